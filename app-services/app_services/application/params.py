"""Function parameters as EdgeX app-service-configurable writes them: a map of names to strings (`"true"`,
`"a,b"`, `"10s"`), names in any casing. YAML scalars and lists are accepted too. Every parameter a function
does not read is an error naming the ones it knows, so a typo never silently changes a pipeline."""

from __future__ import annotations

from typing import Any

from app_services.application.errors import PipelineError
from edgeplane_common.durations import parse_duration
from edgeplane_common.edgex.values import parse_bool


class Params:
    def __init__(self, function: str, raw: dict[str, Any] | None, path: tuple[str | int, ...] = ()) -> None:
        self.function = function
        self.path = path
        self._raw: dict[str, tuple[str, Any]] = {}
        for key, value in (raw or {}).items():
            self._raw[str(key).lower()] = (str(key), value)
        self._known: list[str] = []

    def _get(self, name: str) -> Any:
        self._known.append(name)
        found = self._raw.get(name.lower())
        return None if found is None else found[1]

    def fail(self, name: str, problem: str) -> PipelineError:
        key = self._raw.get(name.lower(), (name, None))[0]
        return PipelineError(f"{self.function}: parameter {name} {problem}", (*self.path, "Parameters", key))

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._get(name)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if required:
                raise self.fail(name, "is required")
            return default
        if isinstance(value, list | dict):
            raise self.fail(name, f"must be text, got {type(value).__name__}")
        return str(value) if not isinstance(value, bool) else ("true" if value else "false")

    def need(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        parsed = parse_bool(str(value))
        if parsed is None:
            raise self.fail(name, f"must be true or false, got {value!r}")
        return parsed

    def number(self, name: str, default: float | None = None, *, required: bool = False) -> float | None:
        value = self._get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a number, got {value!r}") from None

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self._get(name)
        if value is None or value == "":
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            raise self.fail(name, f"must be an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {number}")
        return number

    def names(self, name: str) -> list[str]:
        """A comma-separated list (or a YAML list) of names, blanks dropped."""
        value = self._get(name)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    def pairs(self, name: str, sep: str = ":") -> dict[str, str]:
        """`k1:v1,k2:v2` (EdgeX's AddTags form) or a YAML mapping."""
        value = self._get(name)
        if value is None or value == "":
            return {}
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        out: dict[str, str] = {}
        for part in str(value).split(","):
            if not part.strip():
                continue
            key, found, val = part.partition(sep)
            if not found or not key.strip():
                raise self.fail(name, f"must be written key{sep}value[,key{sep}value...], got {part.strip()!r}")
            out[key.strip()] = val.strip()
        return out

    def duration(self, name: str, default: str) -> float:
        text = self.text(name, default) or default
        try:
            return parse_duration(text)
        except ValueError as err:
            raise self.fail(name, f"is not a duration ({err})") from None

    def choice(self, name: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(name, default, required=default is None)
        assert value is not None
        if value.lower() not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value.lower()

    def check_unknown(self) -> None:
        known = {k.lower() for k in self._known}
        for lowered, (key, _) in self._raw.items():
            if lowered not in known:
                names = ", ".join(dict.fromkeys(self._known)) or "none"
                raise PipelineError(
                    f"{self.function}: unknown parameter {key!r}; it takes {names}", (*self.path, "Parameters", key)
                )


__all__ = ["Params"]
