"""Building and running the Agent listener: beside `serve` (in a thread of the supervising
process, so one cache however many workers serve the API) or alone (`secretsd agent`)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import uvicorn

from secretsd.agent.cache import AgentCache
from secretsd.agent.listener import AgentApp, read_token
from secretsd.agent.upstream import AgentConfigError, AgentCredentials, SecretsManagerUpstream

DEFAULT_TOKEN_VARIABLES = "AWS_TOKEN,AWS_SESSION_TOKEN,AWS_CONTAINER_AUTHORIZATION_TOKEN"


@dataclass(frozen=True)
class AgentOptions:
    endpoint: str
    credentials_file: str
    profile: str = "default"
    region: str = "us-east-1"
    ttl_seconds: int = 300
    cache_size: int = 1000
    token_variables: str = DEFAULT_TOKEN_VARIABLES
    ca_bundle: str = ""
    max_connections: int = 800


def build_agent(options: AgentOptions, environ: Mapping[str, str] | None = None) -> AgentApp:
    """AgentConfigError for anything that would stop the real Agent from starting."""
    if not 0 <= options.ttl_seconds <= 3600:
        raise AgentConfigError("agent ttl_seconds must be between 0 and 3600")
    if not 1 <= options.cache_size <= 1000:
        raise AgentConfigError("agent cache_size must be between 1 and 1000")
    if not options.credentials_file:
        raise AgentConfigError(
            "the agent listener needs credentials of its own: --agent-credentials-file"
        )
    names = [n.strip() for n in options.token_variables.split(",") if n.strip()]
    try:
        token = read_token(names, dict(os.environ if environ is None else environ))
    except (LookupError, OSError) as exc:
        raise AgentConfigError(str(exc)) from exc
    if not token:
        raise AgentConfigError("the agent listener's token is empty")
    credentials = AgentCredentials.from_file(options.credentials_file, options.profile)
    upstream = SecretsManagerUpstream(
        options.endpoint, options.region, credentials, options.ca_bundle or True
    )
    return AgentApp(
        upstream,
        AgentCache(float(options.ttl_seconds), options.cache_size),
        token,
        options.max_connections,
    )


def agent_server(app: AgentApp, log_level: str) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="off",
            http="h11",
            loop="asyncio",
            access_log=False,
            log_config=None,
            log_level=log_level,
            server_header=False,
            date_header=False,
        )
    )


def start_in_thread(server: uvicorn.Server, sock: socket.socket) -> threading.Thread:
    """uvicorn installs no signal handlers outside the main thread: the process's own
    shutdown ends the daemon thread with it."""
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="secretsd-agent", daemon=True
    )
    thread.start()
    return thread
