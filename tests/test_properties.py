"""Property tests: task folders and configs full of random bad values give a clear ArteError or a
usable result, never another exception (a traceback the user cannot act on)."""

import contextlib
import io
import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arte_core.cli import main
from arte_core.config import RunConfig, config_from_dict, config_from_yaml, field_specs
from arte_core.errors import ArteError
from arte_core.tasks import Task, load_task

# Modest counts: the suite's time matters more than the last rare case.
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD_PROMPT = ("Say whether a number is even.\n\nQ: Is 4 even?\nA: Let's think step by step. 4 = 2 x 2. "
               "So the answer is Yes.\n\nQ: Is 3 even?\nA: Let's think step by step. 3 is odd. So the answer is No.")

# JSON and YAML scalars, odd ones included: non-finite and huge numbers, lone surrogates (JSON can
# spell \ud800), control characters, very long text.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.text(st.characters(codec=None, categories=["Cs", "Cc", "Zs", "Lo"]), max_size=20),
    st.sampled_from(["", " ", "\n", "None", "True", "(A)", "-3", "1e-7", "x" * 100_000, "\u00e9\u4e2d\U0001F600"]),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def example_rows() -> st.SearchStrategy:
    """Rows that are mostly examples: the right keys with random values, keys missing, extra keys."""
    keys = st.sampled_from(["input", "target", "Input", "answer", ""])
    return st.one_of(
        st.fixed_dictionaries({"input": json_values, "target": json_values}),
        st.fixed_dictionaries({"input": st.text(), "target": st.sampled_from(["Yes", "No"])}),
        st.dictionaries(keys, json_values, max_size=3),
        json_values,
    )


def encoded(text_strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Text as the bytes of a file: UTF-8 (with or without a BOM), other encodings, or raw bytes."""
    codecs = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])
    as_bytes = st.tuples(text_strategy, codecs).map(lambda pair: pair[0].encode(pair[1], errors="replace"))
    return st.one_of(as_bytes, st.binary(max_size=200), st.just(b""))


task_json_texts = st.one_of(
    st.lists(example_rows(), max_size=25).map(lambda rows: json.dumps({"examples": rows})),
    json_values.map(json.dumps),
    st.text(max_size=200),  # not JSON at all
)
prompt_texts = st.one_of(
    st.just(GOOD_PROMPT),
    st.text(max_size=300),
    st.lists(st.sampled_from(["Q:", "A:", "\n", "\n\n", "-----", "canary", "So the answer is", "Yes.", "No", " ",
                              "Let's think step by step.", "Describe it."]), max_size=30).map("".join),
)


@PROPERTY_SETTINGS
@given(task_json=encoded(task_json_texts), prompt=encoded(prompt_texts))
def test_a_task_folder_of_random_files_loads_or_says_what_is_wrong(task_json: bytes, prompt: bytes):
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root)
        (folder / "tasks").mkdir()
        (folder / "cot-prompts").mkdir()
        (folder / "tasks" / "t.json").write_bytes(task_json)
        (folder / "cot-prompts" / "t.txt").write_bytes(prompt)
        try:
            task = load_task("t", folder)
        except ArteError as exc:
            assert str(exc).strip()
            return
    assert isinstance(task, Task)
    for example in task.examples:  # what the stages will store and compare: real, non-empty text
        for text in (example.input, example.target):
            assert isinstance(text, str) and text.strip()
            text.encode("utf-8")


# -- config ----------------------------------------------------------------------------------------

SPECS = field_specs(RunConfig)
SECTIONS = sorted({spec.path.split(".")[0] for spec in SPECS if "." in spec.path})
def _no_surrogates(value) -> bool:  # a YAML file cannot hold them; JSON can (see scalars)
    return not (isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value))


yaml_scalars = st.one_of(scalars.filter(_no_surrogates), st.dates(), st.datetimes(), st.binary(max_size=8))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


@st.composite
def config_mappings(draw) -> dict:
    """A config mapping: real and made-up sections and fields, with random values of random types."""
    data: dict = {}
    for spec in draw(st.lists(st.sampled_from(SPECS), max_size=6)):
        value = draw(st.one_of(yaml_values, st.just(spec.default), st.lists(yaml_scalars, max_size=3)))
        if "." in spec.path:
            section, name = spec.path.split(".", 1)
            target = data.setdefault(section, {})
            if isinstance(target, dict):
                target[name] = value
        else:
            data[spec.path] = value
    junk_keys = st.one_of(st.sampled_from(SECTIONS), st.text(max_size=8), st.integers(), st.none(), st.booleans())
    for key in draw(st.lists(junk_keys, max_size=2)):  # a section that is not a mapping, keys that are no names
        where = draw(st.sampled_from([data, *[v for v in data.values() if isinstance(v, dict)]]))
        where[key] = draw(yaml_values)
    return data


@PROPERTY_SETTINGS
@given(data=st.one_of(config_mappings(), yaml_values))
def test_a_config_mapping_of_random_values_loads_or_says_what_is_wrong(data):
    try:
        config = config_from_dict(data)
    except ArteError as exc:
        assert str(exc).strip()
        return
    assert isinstance(config, RunConfig)


yaml_texts = st.one_of(
    config_mappings().map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(max_size=200),
    st.lists(st.sampled_from(["score:", "\n", "  ", "n_pref: ", "- ", "1e-7", "!!binary AAA", "&a", "*a", "{", "[",
                              "seed: ", "-1", ".nan", "~", ": ", "'", "\"", "!!python/object:os.system", "\t"]),
             max_size=25).map("".join),
)


@PROPERTY_SETTINGS
@given(text=yaml_texts)
def test_config_yaml_of_random_text_loads_or_says_what_is_wrong(text: str):
    try:
        config = config_from_yaml(text, "form")
    except ArteError as exc:
        assert str(exc).startswith("form")
        return
    assert isinstance(config, RunConfig)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # each builds the parser
@given(spec=st.sampled_from(SPECS),
       value=st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
                       st.sampled_from(["", "[]", "[1,2", "null", "1e999", "-1", "nan", "true", "{a: 1}", "--x"])))
def test_arte_config_with_a_random_flag_value_prints_yaml_or_one_error_line(spec, value: str):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["config", f"--{spec.path}={value}"])
    if code == 0:
        assert "task:" in out.getvalue()
    else:
        assert code == 2, err.getvalue()
        assert err.getvalue().startswith("arte: error:") and err.getvalue().count("\n") == 1, err.getvalue()
