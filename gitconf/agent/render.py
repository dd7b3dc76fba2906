"""A config as the bytes of one agent file: json, yaml, env, properties, or a Jinja2 template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from gitconf.agent.config import FileSpec
from gitconf.core.render import RenderError, render, to_yaml
from gitconf.errors import GitconfError
from gitconf.spring.properties import to_properties

__all__ = ["RenderFailed", "render_file"]


class RenderFailed(GitconfError):
    """The config cannot be written as the file asks; the message names the file and why."""


def _template(path: Path) -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path.parent),
        undefined=jinja2.StrictUndefined,  # a misspelt key fails the render, not the service
        keep_trailing_newline=True,
        autoescape=False,
    )
    # Jinja's own tojson escapes <, > and & for HTML and sorts keys: wrong for config files.
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(
        value, ensure_ascii=False, indent=indent
    )
    environment.filters["toyaml"] = lambda value: to_yaml(value).decode()
    return environment.get_template(path.name)


def render_file(spec: FileSpec, config: Any, revision: str | None) -> bytes:
    """The bytes of spec's file for config; RenderFailed if it cannot be made."""
    if spec.template is not None:
        context = dict(config) if isinstance(config, dict) else {}
        context.update(
            config=config,
            environment=spec.environment,
            service=spec.service,
            revision=revision,
        )
        try:
            return _template(spec.template).render(context).encode()
        except jinja2.TemplateSyntaxError as exc:
            raise RenderFailed(
                f"{exc.filename or spec.template}:{exc.lineno}: {exc.message}"
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise RenderFailed(f"{spec.template}: template {exc.name!r} not found") from None
        except jinja2.TemplateError as exc:
            raise RenderFailed(f"{spec.template}: {exc.message or exc}") from None
        except OSError as exc:
            raise RenderFailed(
                f"{spec.template}: cannot read the template: {exc.strerror}"
            ) from None
    try:
        if spec.format == "properties":
            return to_properties(config)
        return render(config, spec.format or "json")
    except RenderError as exc:
        raise RenderFailed(
            f"{spec.destination}: {spec.environment}/{spec.service} cannot be written "
            f"as {spec.format}: {exc}"
        ) from None
