"""What derives from the declarations, generated so it cannot drift: the config schema's study properties
(every cell parameter of chaosgrid.cells.PARAMETERS, and every study block of chaosgrid.plan.blocks) and
config/README.md's tables of cell parameters (`chaosgrid schema --write`; a test fails when they drift)."""

from __future__ import annotations

import math

from chaosgrid.cells import NOT_IN_STUDIES, PARAMETERS, YAML11_FLOAT, GridError, Parameter, format_value
from chaosgrid.plan.blocks import BLOCKS


def _json_schema(parameter: Parameter) -> dict:
    """JSON schema of one value of `parameter`."""
    text = isinstance(parameter.default, str) and isinstance(parameter.values, str)  # a pattern
    if isinstance(parameter.values, tuple) or text:
        pattern = {"type": "string", "pattern": f"^({parameter.values})$"}
        forms = [pattern] if text else [{"enum": list(parameter.values)}]
        if parameter.other:
            forms.append({"type": "string", "pattern": f"^({parameter.other})$"})
        if parameter.mapping:
            forms.append(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [parameter.mapping],
                    "properties": {parameter.mapping: {"type": "string"}},
                }
            )
        return {"anyOf": forms} if len(forms) > 1 else forms[0]
    if isinstance(parameter.default, bool):
        return {"type": "boolean"}
    if bound := parameter.interval():
        low, high, low_in, high_in = bound
        schema: dict = {"type": "integer" if isinstance(parameter.default, int) else "number"}
        if low > -math.inf:
            schema["minimum" if low_in else "exclusiveMinimum"] = int(low) if low.is_integer() else low
        if high < math.inf:
            schema["maximum" if high_in else "exclusiveMaximum"] = int(high) if high.is_integer() else high
        if isinstance(parameter.default, float):  # 5e-4 as YAML 1.1 reads it: text, range-checked at planning
            return {"anyOf": [schema, {"type": "string", "pattern": f"^{YAML11_FLOAT.pattern}$"}]}
        return schema
    raise ValueError(f"parameter {parameter!r}: no schema for its values {parameter.values!r}")


def study_properties() -> dict[str, dict]:
    """The schema of every cell parameter a study may set: a single value, or a list of them (an axis)."""
    properties = {}
    for name, parameter in PARAMETERS.items():
        if name in NOT_IN_STUDIES:
            continue
        one = _json_schema(parameter)
        # no `default` key: Snakemake's validate would write every default into every study
        default = format_value(parameter.default) or '""'
        doc = f"{parameter.doc.replace('`', '')} (default: {default})"
        properties[name] = {
            "description": doc,
            "oneOf": [one, {"type": "array", "minItems": 1, "items": one}],
        }
    return properties


SCHEMA_HEADER = """\
# Generated in part: $defs.study.properties' cell parameters come from chaosgrid.cells.PARAMETERS and its
# blocks from chaosgrid.plan.blocks (`chaosgrid schema --write` rewrites them; a test fails when they drift).
# Edit everything else here.
"""
README_BEGIN = (
    "<!-- cell parameters: generated from chaosgrid.cells.PARAMETERS by `chaosgrid schema --write` -->"
)
README_END = "<!-- end of cell parameters -->"


def render_schema(text: str) -> str:
    """The config schema `text` with its study's cell-parameter properties and block properties regenerated
    (the others kept, after them, in their order)."""
    import yaml

    schema = yaml.safe_load(text)
    study = schema["$defs"]["study"]
    blocks = {block.name: block.schema() for block in BLOCKS}
    others = {k: blocks.get(k, v) for k, v in study["properties"].items() if k not in PARAMETERS}
    study["properties"] = {**study_properties(), **others}
    dumper = type("NoAliases", (yaml.SafeDumper,), {"ignore_aliases": lambda self, data: True})
    body = yaml.dump(schema, Dumper=dumper, sort_keys=False, width=110, allow_unicode=True)
    return SCHEMA_HEADER + body


def render_readme(text: str) -> str:
    """config/README.md `text` with the tables between its markers regenerated."""
    before, found, rest = text.partition(README_BEGIN)
    _, found_end, after = rest.partition(README_END)
    if not (found and found_end):
        raise GridError(f"config/README.md lacks the markers {README_BEGIN} ... {README_END}")
    return f"{before}{README_BEGIN}\n\n{markdown_tables()}\n{README_END}{after}"


def markdown_tables() -> str:
    """config/README.md's tables of cell parameters, one per section."""
    lines = []
    for section in dict.fromkeys(p.section for p in PARAMETERS.values()):
        lines += [f"**{section}**", "", "| key | default | allowed | meaning |", "|---|---|---|---|"]
        for name, p in PARAMETERS.items():
            if p.section == section:
                allowed = (
                    ", ".join(f"`{v}`" for v in p.values) + (", your own" if p.other else "")
                    if isinstance(p.values, tuple)
                    else "true, false"
                    if p.values is None
                    else f"`{p.values}`"
                )
                default = f"`{format_value(p.default)}`" if p.default != "" else '`""`'
                lines.append(f"| `{name}` | {default} | {allowed} | {p.doc} |")
        lines.append("")
    return "\n".join(lines)
