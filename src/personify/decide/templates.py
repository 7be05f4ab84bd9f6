"""Content templates: Jinja2 in its immutable sandbox, checked when written, bounded when run.

A template is written by a marketer and filled with values a customer controls (traits come
from sign-up forms), so three layers keep it harmless:

1. **When a template is stored** (:func:`check_template`) it must parse, may only read the
   documented variables (``traits``, ``computed``, ``scores``, ``segments``, ``context``,
   ``content``, ``placement``), may not touch any name or attribute starting with ``_`` and
   may not include, import or extend other templates. ``{{ ''.__class__ }}`` is refused here.
2. **When it runs**, Jinja's :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` refuses
   unsafe attributes and mutating methods; here an unsafe access *raises* instead of rendering
   empty, string repetition and powers are size-checked, and the output is length-capped.
3. **HTML channels** (web, email) autoescape, so a trait such as ``<script>`` renders as text.

A template that fails at run time raises :class:`RenderError`; the decision engine then falls
back to the content's static ``fallback`` fields or the placement default, never to an error.

>>> t = compile_template("Hello {{ traits.first_name | default('there') }}!", html=True)
>>> render(t, {"traits": {"first_name": "<b>Ada</b>"}})
'Hello &lt;b&gt;Ada&lt;/b&gt;!'
>>> render(t, {"traits": {}})
'Hello there!'
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from jinja2 import ChainableUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from personify.errors import Problem

TEMPLATE_ROOTS: Final = frozenset(
    {"traits", "computed", "scores", "segments", "context", "content", "placement"}
)
_ALLOWED_GLOBALS: Final = frozenset({"range"})
MAX_OUTPUT: Final = 16_384  # characters per rendered field
MAX_SOURCE: Final = 16_384
_MAX_REPEAT: Final = 4_096  # longest sequence built by "x" * n
_MAX_EXPONENT: Final = 64
_DICT_ATTRIBUTES: Final = frozenset(dir(dict))


class RenderError(Exception):
    """A template could not be rendered safely; the caller falls back."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, made strict: unsafe access raises, big values are refused."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Templates read profile values as ``traits.first_name``: Jinja tries the attribute
        # first, which on a plain dict raises (and costs an exception per read) unless the
        # name is one of dict's own. Other names can only be keys, so read the key at once;
        # a missing key, and dict's own names, take Jinja's path (same result either way).
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} is not allowed in templates")

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        sized = (str, list, tuple)
        if (
            isinstance(left, sized) and isinstance(right, int) and len(left) * right > _MAX_REPEAT
        ) or (
            isinstance(right, sized) and isinstance(left, int) and len(right) * left > _MAX_REPEAT
        ):
            raise SecurityError("repeated sequence too long")
        return operator.mul(left, right)


def _environment(html: bool) -> _Sandbox:
    env = _Sandbox(
        autoescape=html,
        undefined=ChainableUndefined,
        finalize=lambda value: "" if value is None else value,
        auto_reload=False,
        cache_size=0,
    )
    env.globals = {"range": _small_range}
    return env


def _small_range(*args: int) -> range:
    """``range`` for templates: loops stay short (Jinja's sandbox alone allows 100,000)."""
    out = range(*args)
    if len(out) > _MAX_REPEAT:
        raise SecurityError(f"range of {len(out)} items; at most {_MAX_REPEAT}")
    return out


_HTML = _environment(html=True)
_TEXT = _environment(html=False)


class Template:
    """A compiled template and whether it escapes HTML."""

    __slots__ = ("_compiled", "html", "source")

    def __init__(self, source: str, html: bool) -> None:
        self.source = source
        self.html = html
        env = _HTML if html else _TEXT
        self._compiled = env.from_string(source)

    def render(self, variables: Mapping[str, Any]) -> str:
        return self._compiled.render(variables)


def _private(text: object) -> bool:
    return isinstance(text, str) and text.startswith("_")


def _forbidden(ast: nodes.Template) -> list[str]:
    found: list[str] = []
    for node in ast.find_all(nodes.Node):
        if isinstance(
            node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends | nodes.Block
        ):
            found.append(f"{type(node).__name__.lower()} is not allowed in content templates")
        elif isinstance(node, nodes.Getattr) and _private(node.attr):
            found.append(f'attribute "{node.attr}" is private; templates may not read it')
        elif isinstance(node, nodes.Name) and _private(node.name):
            found.append(f'name "{node.name}" is private; templates may not read it')
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and "__" in node.value:
            # catches traits["__class__"], attr("__class__") and "{0.__class__}".format(x)
            found.append(f"string {node.value!r} names a private attribute; templates may not")
    return found


def check_template(source: object, field: str) -> list[Problem]:
    """Every reason ``source`` may not be stored as a template (empty if it may)."""
    if not isinstance(source, str):
        return [Problem(field, f"a template must be text, got {type(source).__name__}")]
    if len(source) > MAX_SOURCE:
        return [Problem(field, f"template is {len(source)} characters; at most {MAX_SOURCE}")]
    try:
        ast = _TEXT.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        return [Problem(field, f"template does not parse (line {line}): {exc}")]
    problems = [Problem(field, message) for message in dict.fromkeys(_forbidden(ast))]
    from jinja2 import meta

    unknown = meta.find_undeclared_variables(ast) - TEMPLATE_ROOTS - _ALLOWED_GLOBALS
    for name in sorted(unknown):
        if not name.startswith("_"):
            problems.append(
                Problem(
                    field,
                    f'unknown variable "{name}"; templates can read '
                    + ", ".join(sorted(TEMPLATE_ROOTS)),
                )
            )
    return problems


def compile_template(source: str, *, html: bool) -> Template:
    """Compile a template already accepted by :func:`check_template`."""
    return Template(source, html)


def render(template: Template, variables: Mapping[str, Any]) -> str:
    """Render, or raise :class:`RenderError` (unsafe access, runtime error, output too long)."""
    with _failures():
        out = template.render(variables)
    if len(out) > MAX_OUTPUT:
        raise RenderError(f"rendered {len(out)} characters; at most {MAX_OUTPUT}")
    return out


@contextmanager
def _failures() -> Iterator[None]:
    try:
        yield
    except SecurityError as exc:
        raise RenderError(f"refused by the sandbox: {exc}") from exc
    except RenderError:
        raise
    except Exception as exc:  # any template bug must fall back, never fail the decision
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc


class FieldTemplates:
    """Several named fields compiled into one template, one ``{% block %}`` per field.

    Rendering all of a variant's fields then builds one Jinja context instead of one per
    field (the context is most of Jinja's per-render cost). Field sources were checked by
    :func:`check_template` one by one, which refuses blocks, so no field can reach another.

    >>> t = FieldTemplates({"a": "Hi {{ traits.n }}", "b": "{{ traits.n | upper }}!"}, html=False)
    >>> t.render({"traits": {"n": "ada"}})
    {'a': 'Hi ada', 'b': 'ADA!'}
    """

    __slots__ = ("_compiled", "names")

    def __init__(self, fields: Mapping[str, str], *, html: bool) -> None:
        self.names = tuple(fields)
        env = _HTML if html else _TEXT
        # Jinja drops one trailing newline of a whole template; do the same per field.
        source = "".join(
            f"{{% block {name} %}}{text[:-1] if text.endswith(chr(10)) else text}{{% endblock %}}"
            for name, text in fields.items()
        )
        self._compiled = env.from_string(source)

    def render(self, variables: Mapping[str, Any]) -> dict[str, str]:
        """Every field rendered, or :class:`RenderError` if any of them fails."""
        out: dict[str, str] = {}
        with _failures():
            context = self._compiled.new_context(dict(variables))
            blocks = self._compiled.blocks
            for name in self.names:
                text = "".join(blocks[name](context))
                if len(text) > MAX_OUTPUT:
                    raise RenderError(
                        f"{name} rendered {len(text)} characters; at most {MAX_OUTPUT}"
                    )
                out[name] = text
        return out
