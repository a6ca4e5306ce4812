"""Every hub model, imported in one place so migrations and tests see the whole schema."""

from services.hub.agreements.models import Agreement
from services.hub.audit.models import AuditEntry, AuditHead
from services.hub.credentials.models import Credential
from services.hub.mailbox.models import Blob
from services.hub.nodes.models import Node
from services.hub.queries.models import Query
from services.hub.releases.models import Release
from services.hub.results.models import Result
from services.hub.store.base import Base
from services.hub.tasks.models import Task

__all__ = [
    "Agreement",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Blob",
    "Credential",
    "Node",
    "Query",
    "Release",
    "Result",
    "Task",
]
