"""extraConfig ↔ plain dicts: what vic_ref.config encodes and diffs, as ReconfigVM/CreateVM take it."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyVmomi import vim


def option_values(changes: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[vim.option.OptionValue]:
    """OptionValues for a ConfigSpec's extraConfig from a dict or (key, value) pairs (config.diff's Changes).

    A value of "" deletes the key (ReconfigVM); `vic_ref.config.encode` never produces one for a present key.
    """
    pairs = changes.items() if isinstance(changes, Mapping) else changes
    return [vim.option.OptionValue(key=key, value=value) for key, value in pairs]


def option_dict(options: Iterable[vim.option.OptionValue] | None) -> dict[str, str]:
    """A VM's `config.extraConfig` as a dict (values as stored: `<nil>` stays `<nil>` for config.decode)."""
    return {o.key: "" if o.value is None else str(o.value) for o in options or []}
