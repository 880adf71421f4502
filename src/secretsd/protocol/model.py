"""The botocore service models are the API spec; load them from the installed (pinned) botocore."""

from __future__ import annotations

import botocore.session
from botocore.model import ServiceModel


def load_service_model(service_name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service_name)
