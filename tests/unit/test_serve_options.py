"""`serve` refuses bad TLS, throttling and agent options before touching the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsd.cli.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "{cert}", "--tls-key", "{cert}"], "cannot load the TLS certificate"),
        (["--throttle-rates", "GetSecretValue=fast"], "throttle rate"),
    ],
)
def test_bad_options_stop_serve(tmp_path: Path, args: list[str], message: str) -> None:
    cert = tmp_path / "not-a-cert.pem"
    cert.write_text("not a certificate\n")
    data_dir = tmp_path / "data"
    argv = ["serve", "--data-dir", str(data_dir), "--port", "0"]
    argv += [a.format(cert=cert) for a in args]
    result = CliRunner().invoke(main, argv, env={"SECRETSD_DATA_DIR": str(data_dir)})
    assert result.exit_code != 0
    assert message in result.output
    assert not data_dir.exists()
