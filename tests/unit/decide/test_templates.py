"""Templates: placeholders filled safely; injection attempts refused when stored and at run time."""

from __future__ import annotations

import pytest
from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from personify.decide.templates import (
    MAX_OUTPUT,
    RenderError,
    check_template,
    compile_template,
    render,
)


def run(source: str, html: bool = True, **variables: object) -> str:
    return render(compile_template(source, html=html), variables)


def test_placeholders_read_traits_with_defaults() -> None:
    source = "Hello {{ traits.first_name | default('there') }}"
    assert run(source, traits={"first_name": "Ada"}) == "Hello Ada"
    assert run(source, traits={}) == "Hello there"
    assert run("{{ traits.a.b.c | default('deep') }}", traits={}) == "deep"


def test_html_channels_escape_customer_values_and_text_channels_do_not() -> None:
    source = "Hi {{ traits.name }}"
    evil = {"name": "<script>alert(1)</script>"}
    assert run(source, html=True, traits=evil) == "Hi &lt;script&gt;alert(1)&lt;/script&gt;"
    assert run(source, html=False, traits=evil) == "Hi <script>alert(1)</script>"


def test_a_valid_template_passes_the_check() -> None:
    source = (
        "{% for s in segments %}{{ s | upper }} {% endfor %}"
        "{{ '%.2f' | format(context.cart_value) }} {{ content.category }} {{ placement }}"
    )
    assert check_template(source, "f") == []
    out = run(
        source,
        segments=["vip"],
        context={"cart_value": 3},
        content={"category": "x"},
        placement="p",
    )
    assert out == "VIP 3.00 x p"


INJECTIONS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ traits.__init__.__globals__ }}",
    "{{ traits['__class__'] }}",
    "{{ traits | attr('__class__') }}",
    "{{ '{0.__class__}'.format(traits) }}",
]


@pytest.mark.parametrize("source", [*INJECTIONS, "{{ traits._private }}"])
def test_injection_attempts_are_refused_when_stored(source: str) -> None:
    problems = check_template(source, "variants.web.headline")
    assert problems, source
    assert all(p.field == "variants.web.headline" for p in problems)
    assert any("private" in p.message for p in problems)


@pytest.mark.parametrize("source", INJECTIONS)
def test_injection_attempts_cannot_run_even_if_stored_anyway(source: str) -> None:
    # a definition written before the checks existed, or straight into the database
    with pytest.raises(RenderError, match=r"sandbox|undefined"):
        run(source, traits={"a": 1})


@pytest.mark.parametrize(
    "source",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ config.items() }}",
        "{{ self.__init__.__globals__ }}",
    ],
)
def test_jinja_globals_are_not_available(source: str) -> None:
    problems = check_template(source, "f")
    assert problems
    with pytest.raises(RenderError):
        run(source, traits={})


def test_mutating_methods_are_refused() -> None:
    with pytest.raises(RenderError, match="sandbox"):
        run("{{ segments.append('vip') }}", segments=[])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'a' * 100000 }}", "too long"),
        ("{{ 2 ** 100000 }}", "exponent"),
        ("{% for i in range(1000000) %}x{% endfor %}", "range"),
        ("{% for i in range(5) %}{{ 'ab' * 2000 }}{% endfor %}", f"at most {MAX_OUTPUT}"),
    ],
)
def test_resource_exhaustion_is_refused(source: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        run(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ unknown_name }}", 'unknown variable "unknown_name"'),
        ("{% include 'x.html' %}", "include is not allowed"),
        ("{% extends 'base' %}", "extends is not allowed"),
        ("{% import 'm' as m %}", "import is not allowed"),
        ("{{ traits.name", "does not parse"),
        (42, "must be text"),
    ],
)
def test_check_explains_what_is_wrong(source: object, message: str) -> None:
    problems = check_template(source, "f")
    assert any(message in p.message for p in problems), problems


def test_runtime_errors_become_render_errors() -> None:
    with pytest.raises(RenderError, match=r"ZeroDivisionError|division"):
        run("{{ 1 / computed.orders }}", computed={"orders": 0})


@pytest.mark.parametrize(
    "source",
    [
        "{{ traits.first_name }}",
        "{{ traits.missing | default('none') }}",
        "{{ traits.items is defined }} {{ traits.keys is defined }}",
        "{{ traits.nested.inner }}",
    ],
)
def test_reading_keys_as_attributes_matches_jinjas_own_sandbox(source: str) -> None:
    traits = {"first_name": "Ada", "items": "a trait named like a dict method", "nested": {}}
    plain = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
    assert run(source, html=False, traits=traits) == plain.from_string(source).render(traits=traits)
