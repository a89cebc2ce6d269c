"""The API's JSON shapes: `StrictInput`, the base of every request body, and the catalogue's answers for the
OpenAPI document (routes write the same shapes with orjson directly)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from shop.web.input_policy import text_problem


class _Multiline:
    """Marks a text field that may run over several lines: `description: Annotated[str, MULTILINE]`."""

    def __repr__(self) -> str:
        return "MULTILINE"


MULTILINE: Final = _Multiline()


def _iso_text(value: object) -> object:
    if value is not None and not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "a date and time as ISO 8601 text, e.g. 2026-12-01T09:00:00Z")
    return value


# JSON has no date type: a moment is ISO 8601 text, never a number of seconds (strict mode alone would refuse the
# text: FastAPI validates the parsed body as Python objects, not as JSON)
Moment = Annotated[datetime, Strict(False), BeforeValidator(_iso_text)]


def _text_problem(value: object, *, multiline: bool) -> str | None:
    """The first problem with the text in a field's value: itself, or the keys and values inside it."""
    if isinstance(value, str):
        return text_problem(value, multiline=multiline)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key, multiline=False) or _text_problem(item, multiline=multiline)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = _text_problem(item, multiline=multiline)
            if problem:
                return problem
    return None  # numbers, booleans, moments; a nested model has checked its own fields


SLUG: Final = r"^[a-z0-9]+(-[a-z0-9]+)*$"  # shop.domain.catalog's rule for a slug
VOUCHER_CODE: Final = r"^ *[A-Za-z0-9_-]{3,32} *$"  # shop.domain.discounts' rule for a code (spaces are trimmed)

# what the input policy lets through, as JSON Schema patterns, so the document says what the API takes
ONE_LINE_TEXT: Final = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
MULTILINE_TEXT: Final = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


def _declare_text(schema: dict[str, Any], pattern: str) -> None:
    """Give every text in `schema` (a field's, or a dictionary's keys and values) the input policy's pattern,
    unless it has a pattern of its own (each of those leaves control characters out already)."""
    if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema:
        schema["pattern"] = pattern
    if schema.get("type") == "object" and "properties" not in schema:
        schema.setdefault("propertyNames", {}).setdefault("pattern", ONE_LINE_TEXT)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _declare_text(schema[key], pattern)
    for option in schema.get("anyOf", ()):
        _declare_text(option, pattern)


def _document_text_policy(schema: dict[str, Any], model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        prop = schema.get("properties", {}).get(field.alias or name)
        if prop is not None:
            _declare_text(prop, MULTILINE_TEXT if MULTILINE in field.metadata else ONE_LINE_TEXT)


class StrictInput(BaseModel):
    """A request body: unknown fields (ids, derived values, roles) are refused with a 422, never ignored; every
    field has JSON's own type (a quantity of "2", true or 2.0 is refused, not taken for 2); no text holds a
    control character, and only a field marked MULTILINE a tab or a line break (shop.web.input_policy)."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000, strict=True,
                              json_schema_extra=_document_text_policy)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        problem = _text_problem(value, multiline=field is not None and MULTILINE in field.metadata)
        if problem is not None:
            raise PydanticCustomError("control_characters", problem)
        return value


class MoneyOut(BaseModel):
    amount: str = Field(examples=["19.99"], description="a decimal number written as text")
    currency: str = Field(examples=["EUR"])


class ImageOut(BaseModel):
    url: str
    alt: str


class CategoryOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    parent_id: int | None
    position: int


class CategoryList(BaseModel):
    items: list[CategoryOut]
    total: int


class CategoryRef(BaseModel):
    slug: str
    name: str


class ProductCard(BaseModel):
    slug: str
    title: str
    price: MoneyOut = Field(description="the lowest price of its variants")
    image: ImageOut | None
    in_stock: bool
    category_id: int | None
    rank: float | None = Field(None, description="relevance when searching; higher is better")


class ProductPage(BaseModel):
    items: list[ProductCard]
    total: int
    page: int
    limit: int


class VariantOut(BaseModel):
    sku: str
    title: str
    options: dict[str, str]
    price: MoneyOut
    weight_grams: int = Field(description="shipping weight in grams")
    available: int
    in_stock: bool


class PriceRange(BaseModel):
    min: MoneyOut
    max: MoneyOut


class ProductOut(BaseModel):
    slug: str
    title: str
    description: str
    category: CategoryRef | None
    breadcrumbs: list[CategoryRef]
    attributes: dict[str, str]
    images: list[ImageOut]
    variants: list[VariantOut]
    price_range: PriceRange | None
    in_stock: bool
    published: bool
    created_at: datetime | None


class FieldProblem(BaseModel):
    field: str = Field(examples=["variants.0.price"], description="where the bad value was, dotted")
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (application/problem+json); some problems add members of their own
    (`sku` and `available` when out of stock, `order` and `reason` when a payment is declined)."""

    type: str = Field(examples=["about:blank"], description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(None, description="one entry per bad field")
