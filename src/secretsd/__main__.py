from secretsd.cli.main import main

main()
