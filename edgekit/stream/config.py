"""``edgekit serve`` configuration: a TOML file read into a frozen dataclass tree.

Unknown sections and keys are errors naming the key and the file (a typo such as ``thresold``
must not be silently ignored on a device nobody watches). Relative paths (model, labels) are
relative to the config file. Command-line flags override the file through :func:`override`.
See ``systemd/edgekit.toml`` for an annotated example. The sections are
:mod:`~.config_sections`, the rules each value passes :mod:`~.config_rules`.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.stream.config_rules import ENABLING, PATHS, RANGES, check_value
from edgekit.stream.config_sections import (  # noqa: F401 - the sections' import path
    CascadeConfig,
    FleetConfig,
    HealthConfig,
    HttpConfig,
    ModelConfig,
    MqttConfig,
    OutputConfig,
    PipelineConfig,
    ServeConfig,
    SourceConfig,
    WorkerConfig,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10 on Raspberry Pi OS Bullseye
    import tomli as tomllib

_RANGES = RANGES  # tests/hostile reads the ranges here
MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few KiB


def load_config(path: str | os.PathLike | None) -> ServeConfig:
    """Read a TOML file (None -> all defaults). Raises EdgekitError naming file and key."""
    if path is None:
        return ServeConfig()
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise EdgekitError(f"{path}: not a regular file", "pass a TOML config file")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such config file", "check --config") from None
    except IsADirectoryError:
        raise EdgekitError(f"{path}: is a folder", "pass a TOML config file") from None
    except OSError as e:
        raise EdgekitError(f"{path}: cannot read config ({e})", "check permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise EdgekitError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes", "is it a config?")
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is not part of the TOML
    except UnicodeDecodeError as e:
        from edgekit.safeio import not_utf8

        raise EdgekitError(f"{path}: {not_utf8(raw, e)}", "save the config as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EdgekitError(f"{path}: not valid TOML ({e})", "fix the syntax") from None
    except RecursionError:
        raise EdgekitError(f"{path}: not valid TOML (nested too deeply)", "fix it") from None
    return from_dict(data, where=str(path), base=path.parent)


def from_dict(data: dict, where: str = "config", base: Path | None = None) -> ServeConfig:
    """Build a ServeConfig from nested dicts, validating every key and value type."""
    sections = {f.name: f for f in dataclasses.fields(ServeConfig)}
    built: dict[str, Any] = {}
    for name, value in data.items():
        if name not in sections:
            raise EdgekitError(
                f"{where}: unknown section [{name}]", f"known sections: {', '.join(sections)}"
            )
        if not isinstance(value, dict):
            raise EdgekitError(f"{where}: {name} must be a [{name}] table")
        cls = sections[name].default_factory()  # type: ignore[misc]
        built[name] = _section(type(cls), name, value, where, base)
    return ServeConfig(**built)


def _section(cls, section: str, values: dict, where: str, base: Path | None):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise EdgekitError(
                f"{where}: unknown key {section}.{key}",
                f"known keys in [{section}]: {', '.join(fields)}",
            )
        default = fields[key].default
        out[key] = check_value(section, key, value, default, where)
        if (section, key) == ("fleet", "public_key") and base is not None:
            out[key] = _key_or_path(out[key], base)
        elif (section, key) in PATHS and out[key] and base is not None:
            out[key] = str(base / Path(out[key]).expanduser())
        elif (section, key) == ("source", "uri") and base is not None:
            out[key] = resolve_uri(out[key], base)
    if ENABLING.get(section) in values and "enabled" in fields and "enabled" not in values:
        out["enabled"] = True  # [http] listen = ... alone served nothing and said nothing
    return cls(**out)


def _key_or_path(value: str, base: Path) -> str:
    """``[fleet] public_key``: the key's text stays as it is, a relative path is relative to the
    config file's folder."""
    text = value.strip()
    if not text or text.startswith(("ssh-", "-----BEGIN")) or Path(text).is_absolute():
        return text
    from edgekit.signing import looks_like_raw_key

    return text if looks_like_raw_key(text) else str(base / Path(text).expanduser())


def resolve_uri(uri: str, base: Path) -> str:
    """A relative file or folder path in ``[source] uri`` is relative to the config file's
    folder (like ``[model] path``); devices, camera indexes, URLs and picamera2 are kept."""
    text = str(uri).strip()
    if (
        not text
        or text.isdigit()
        or "://" in text
        or text.lower().startswith("picamera2")
        or Path(text).expanduser().is_absolute()
    ):
        return text
    return str(base / text)


def override(config: ServeConfig, **flags: Any) -> ServeConfig:
    """Apply flags ``section__key=value`` (None = not given) on top of ``config``."""
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        section, key = dotted.split("__", 1)
        default = getattr(getattr(ServeConfig(), section), key)
        changes.setdefault(section, {})[key] = check_value(section, key, value, default, "flag")
    return dataclasses.replace(
        config,
        **{s: dataclasses.replace(getattr(config, s), **kv) for s, kv in changes.items()},
    )
