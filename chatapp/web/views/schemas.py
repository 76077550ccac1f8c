"""A person's saved JSON schemas ("Saved schemas" under the panel's JSON schema box): listed
when the box is opened, saved from the box's text under a name, deleted. Using one is the
page's: it puts the schema's text into the box, and the panel saves it like any change."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from chatapp.conversations import selectors, services
from chatapp.core.errors import InvalidSettings

from ..requests import AuthenticatedRequest


def _schemas(
    request: AuthenticatedRequest, *, status: str = "", error: str = "", name: str = ""
) -> HttpResponse:
    context = {
        "schemas": selectors.schemas_for(owner=request.user),
        "schema_status": status,
        "schema_error": error,
        "schema_name": name,
    }
    return render(request, "chatapp/_saved_schemas.html", context)


@require_GET
def schema_list(request: AuthenticatedRequest) -> HttpResponse:
    return _schemas(request)


@require_POST
def schema_save(request: AuthenticatedRequest) -> HttpResponse:
    """ "Save schema": the JSON schema box's text under the name typed (the same name saves
    over it). A refusal keeps the name typed and says what is wrong."""
    name = request.POST.get("schema_name", "")
    try:
        schema = services.schema_save(
            owner=request.user, name=name, text=request.POST.get("json_schema", "")
        )
    except InvalidSettings as exc:
        return _schemas(request, error=exc.message, name=name[:200])
    return _schemas(request, status=f"Saved the schema “{schema.name}”.", name=schema.name)


@require_POST
def schema_delete(request: AuthenticatedRequest, schema_id: uuid.UUID) -> HttpResponse:
    schema = selectors.schema_for_owner(owner=request.user, schema_id=schema_id)
    name = schema.name
    services.schema_delete(schema=schema)
    return _schemas(request, status=f"Deleted the schema “{name}”.")
