//! Records as rows of plain values: what will cross the store boundary for every kind.
//!
//! A record becomes a [`RecordRow`]: its meta columns, then one [`Value`] per column of its
//! description in table order (two for money), then its custom fields when the kind has them.
//! [`Stored`] converts both ways with direct field access, generated for each kind by
//! [`record_kind!`](crate::record_kind) from the same declaration as its [`KindDef`], so the
//! description and the mapping cannot disagree. Stores will bind and decode the values by
//! [`ColumnType`], once, for every kind.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{FieldDef, FieldType, KindDef};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::model::{ActivityKind, ActivityTarget, CustomFields, Kind, LeadStatus, Money, RecordMeta, Stage};
use crate::scope::{TenantId, UserId};
use crate::store::Entity;

/// One column's value. `Null` carries no type: a store binds it by the column's [`ColumnType`].
///
/// Not `#[non_exhaustive]`: a store matches every variant, so a new one is a compile error in
/// each store rather than a silent fallback arm.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// Text, and enum values by wire name. Borrowed where the text is static (an enum's wire
    /// name, read or written), so a row of a kind with enum fields allocates nothing for them.
    Text(Cow<'static, str>),
    /// An integer.
    Int(i64),
    /// True or false.
    Bool(bool),
    /// An id.
    Uuid(Uuid),
    /// An instant.
    Time(DateTime<Utc>),
    /// A calendar date.
    Date(NaiveDate),
    /// A JSON document.
    Json(serde_json::Value),
}

/// How a column is stored, from its field's [`FieldType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    Text,
    /// A 64-bit integer.
    Int,
    /// A 32-bit integer ([`FieldType::Int`]).
    Int32,
    /// A boolean.
    Bool,
    /// A UUID.
    Uuid,
    /// An instant.
    Time,
    /// A date.
    Date,
    /// JSON.
    Json,
}

impl Value {
    /// Whether the value can be stored in a column of type `ty` (`Null` fits any).
    pub fn fits(&self, ty: ColumnType) -> bool {
        matches!(
            (self, ty),
            (Value::Null, _)
                | (Value::Text(_), ColumnType::Text)
                | (Value::Int(_), ColumnType::Int | ColumnType::Int32)
                | (Value::Bool(_), ColumnType::Bool)
                | (Value::Uuid(_), ColumnType::Uuid)
                | (Value::Time(_), ColumnType::Time)
                | (Value::Date(_), ColumnType::Date)
                | (Value::Json(_), ColumnType::Json)
        )
    }
}

/// One column of a kind's table, after the meta columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// How it is stored.
    pub ty: ColumnType,
    /// Whether it may hold `NULL`.
    pub nullable: bool,
    /// The values an enum column holds (empty for others): a store reading one can answer
    /// with the static name instead of allocating the text.
    pub choices: &'static [&'static str],
}

impl Column {
    /// The static wire name equal to `text`, if the column is an enum that has it.
    pub fn choice(&self, text: &str) -> Option<&'static str> {
        self.choices.iter().copied().find(|choice| *choice == text)
    }
}

impl KindDef {
    /// The columns of the kind's fields, in table order: one per field, two for money.
    pub fn columns(&self) -> impl ExactSizeIterator<Item = Column> + '_ {
        self.column_list().iter().copied()
    }

    /// [`KindDef::columns`] as a slice, worked out once.
    pub fn column_list(&self) -> &[Column] {
        self.column_cache.get_or_init(|| self.work_out_columns().collect())
    }

    fn work_out_columns(&self) -> impl Iterator<Item = Column> + '_ {
        self.fields.iter().flat_map(|f| {
            let choices = match f.ty {
                FieldType::Enum(values) => values,
                _ => &[],
            };
            let column = |name, ty| Column { name, ty, nullable: f.nullable, choices };
            match (f.column_type(), f.ty) {
                (Some(ty), _) => [Some(column(f.name, ty)), None],
                (None, FieldType::Money { minor, currency }) => {
                    [Some(column(minor, ColumnType::Int)), Some(column(currency, ColumnType::Text))]
                }
                (None, _) => [None, None],
            }
            .into_iter()
            .flatten()
        })
    }
}

impl FieldDef {
    /// The type of the field's one column; `None` for money, which has two (see
    /// [`KindDef::columns`]).
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self.ty {
            FieldType::Text
            | FieldType::Domain
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Enum(_)
            | FieldType::Key => ColumnType::Text,
            FieldType::Int => ColumnType::Int32,
            FieldType::Bool => ColumnType::Bool,
            FieldType::Time => ColumnType::Time,
            FieldType::Date => ColumnType::Date,
            FieldType::Json => ColumnType::Json,
            FieldType::Ref(_) | FieldType::Member => ColumnType::Uuid,
            FieldType::Money { .. } => return None,
        })
    }
}

/// The meta columns every record table starts with, in order.
pub const META_COLUMNS: [&str; 6] = ["tenant_id", "id", "version", "created_at", "updated_at", "deleted_at"];

impl KindDef {
    /// Every column of the kind's table, in order: [`META_COLUMNS`], the fields' columns, then
    /// `custom_fields` and `search_words` where the kind has them — the order in which stores
    /// write and read a [`RecordRow`].
    pub fn table_columns(&self) -> Vec<&'static str> {
        let mut columns = META_COLUMNS.to_vec();
        columns.extend(self.columns().map(|c| c.name));
        if self.custom_fields {
            columns.push("custom_fields");
        }
        if self.searchable() {
            columns.push("search_words");
        }
        columns
    }
}

/// The columns every record row starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowMeta {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The record's id.
    pub id: Uuid,
    /// Its version.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl RowMeta {
    /// A record's meta as row columns.
    pub fn of<T>(meta: &RecordMeta<T>) -> Self {
        Self {
            tenant_id: meta.tenant_id,
            id: meta.id.uuid(),
            version: meta.version,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            deleted_at: meta.deleted_at,
        }
    }

    /// The row's meta as a record's.
    pub fn typed<T>(&self) -> RecordMeta<T> {
        RecordMeta {
            id: Id::from_uuid(self.id),
            tenant_id: self.tenant_id,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        }
    }
}

/// A record of any kind as a row.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    /// Its kind's description.
    pub def: &'static KindDef,
    /// The meta columns.
    pub meta: RowMeta,
    /// One value per [`KindDef::columns`], in order.
    pub values: Vec<Value>,
    /// The custom fields, when the kind carries them.
    pub custom_fields: Option<CustomFields>,
}

impl RecordRow {
    /// Checks the row against its description: one value per column, each of its column's type,
    /// `Null` only where the column is nullable, custom fields exactly when the kind has them.
    pub fn check(&self) -> Result<()> {
        let columns: Vec<Column> = self.def.columns().collect();
        let bad = |what: String| Err(Error::internal(format!("a {} row {what}", self.def.name)));
        if columns.len() != self.values.len() {
            return bad(format!("has {} values for {} columns", self.values.len(), columns.len()));
        }
        for (column, value) in columns.iter().zip(&self.values) {
            if !value.fits(column.ty) || (*value == Value::Null && !column.nullable) {
                return bad(format!("holds {value:?} in {}", column.name));
            }
        }
        if self.custom_fields.is_some() != self.def.custom_fields {
            return bad("has custom fields its kind does not, or lacks them".into());
        }
        Ok(())
    }
}

impl RecordRow {
    /// Reads a row of `def`'s table (see [`KindDef::table_columns`]): `column` reads the column
    /// at a table index as a value of its type, `custom` the custom-fields column, which follows
    /// the fields' columns. A store supplies the two readers; the layout is decided here, once.
    pub fn read<E>(
        def: &'static KindDef,
        meta: RowMeta,
        mut column: impl FnMut(usize, &Column) -> std::result::Result<Value, E>,
        custom: impl FnOnce(usize) -> std::result::Result<CustomFields, E>,
    ) -> std::result::Result<Self, E> {
        let mut values = Vec::with_capacity(def.fields.len() + 1);
        let mut idx = META_COLUMNS.len();
        for c in def.columns() {
            values.push(column(idx, &c)?);
            idx += 1;
        }
        let custom_fields = if def.custom_fields { Some(custom(idx)?) } else { None };
        Ok(RecordRow { def, meta, values, custom_fields })
    }

    /// The value of the column named `name`, if the kind has one.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.def.columns().position(|c| c.name == name).and_then(|i| self.values.get(i))
    }

    /// A field error for each field holding a value only the kind's rules give it
    /// ([`FieldDef::rule_values`]): what a record may not be created with.
    pub fn rule_held(&self) -> Vec<crate::error::FieldError> {
        let held = self.def.columns().zip(&self.values).filter_map(|(column, value)| {
            let field = self.def.field(column.name)?;
            match value {
                Value::Text(text) if field.rule_values.contains(&text.as_ref()) => Some((field, text)),
                _ => None,
            }
        });
        held.map(|(field, value)| {
            let message = format!(
                "cannot be `{value}` when a {} is created: only its own rules set that",
                self.def.name
            );
            crate::error::FieldError::new(field.name, message)
        })
        .collect()
    }

    /// The member a member field names (an owner), when it is set.
    pub fn member(&self, name: &str) -> Option<UserId> {
        match self.value(name) {
            Some(Value::Uuid(id)) => Some(UserId::from_uuid(*id)),
            _ => None,
        }
    }

    /// The words a store indexes for text search, space-separated (the
    /// [`crate::search::words`] of every searchable field); `None` when the kind is not
    /// searchable. Computed in core so that every store indexes the same words.
    pub fn search_words(&self) -> Option<String> {
        if !self.def.searchable() {
            return None;
        }
        let texts = self.def.columns().zip(&self.values).map(|(column, value)| match value {
            Value::Text(text) if self.def.field(column.name).is_some_and(|f| f.search) => Some(text.as_ref()),
            _ => None,
        });
        Some(self.def.search_words(texts))
    }
}

/// A record type stored through the generic row path.
pub trait Stored: Sized {
    /// Its kind's description.
    const DEF: &'static KindDef;
    /// The record as a row.
    fn to_row(&self) -> RecordRow;
    /// The record from its meta and its columns, read in table order from `values`.
    fn read<S: ColumnSource + ?Sized>(meta: RowMeta, values: &mut S) -> Result<Self>;

    /// The record from a row of its kind; an internal error if the row does not fit.
    fn from_row(row: RecordRow) -> Result<Self> {
        if row.def.kind != Self::DEF.kind {
            return Err(Error::internal(format!("a {} row read as {}", row.def.name, Self::DEF.name)));
        }
        let mut values = RowValues::new(row.values, row.custom_fields);
        let record = Self::read(row.meta, &mut values)?;
        if values.is_spent() {
            Ok(record)
        } else {
            Err(Error::internal(format!("a {} row with too many values", Self::DEF.name)))
        }
    }

    /// The record as an entity to write.
    fn to_entity(&self) -> Entity {
        Entity::Record(self.to_row())
    }

    /// The record an entity read from a store holds; an internal error if it holds another
    /// kind or another row.
    fn from_entity(entity: Entity) -> Result<Self> {
        match entity {
            Entity::Record(row) => Self::from_row(row),
            other => Err(Error::internal(format!("expected a {} row, got {other:?}", Self::DEF.name))),
        }
    }
}

/// Where a record's column values come from, in table order: a [`RecordRow`]'s values, or a
/// store's driver row read in place (no `Vec<Value>` built per row; see
/// [`crate::store::PageSink`]).
pub trait ColumnSource {
    /// The next field column's value; an internal error when the row has no more.
    fn next_value(&mut self) -> Result<Value>;
    /// The custom-fields column, which follows the field columns.
    fn custom_fields(&mut self) -> Result<CustomFields>;
}

/// A [`RecordRow`]'s values as a [`ColumnSource`].
pub struct RowValues {
    values: std::vec::IntoIter<Value>,
    custom_fields: Option<CustomFields>,
}

impl RowValues {
    /// The values and custom fields of `row`.
    pub fn new(values: Vec<Value>, custom_fields: Option<CustomFields>) -> Self {
        Self { values: values.into_iter(), custom_fields }
    }

    /// Whether every value was taken.
    pub fn is_spent(&self) -> bool {
        self.values.len() == 0
    }
}

impl ColumnSource for RowValues {
    #[inline]
    fn next_value(&mut self) -> Result<Value> {
        self.values.next().ok_or_else(|| Error::internal("a row has fewer values than its kind's columns"))
    }

    fn custom_fields(&mut self) -> Result<CustomFields> {
        self.custom_fields.take().ok_or_else(|| Error::internal("a row without its custom fields"))
    }
}

/// A store's driver row as a [`ColumnSource`], read in place: `column` reads the column at a
/// table index as a value of its type, `custom` the custom-fields column. A store supplies the
/// two readers; the layout ([`KindDef::table_columns`]) is decided here, as in
/// [`RecordRow::read`].
pub struct InPlace<F, G> {
    columns: std::slice::Iter<'static, Column>,
    idx: usize,
    column: F,
    custom: G,
}

impl<F, G> InPlace<F, G>
where
    F: FnMut(usize, &Column) -> Result<Value>,
    G: FnMut(usize) -> Result<CustomFields>,
{
    /// A row of `def`'s table, read through `column` and `custom`.
    pub fn new(def: &'static KindDef, column: F, custom: G) -> Self {
        Self { columns: def.column_list().iter(), idx: META_COLUMNS.len(), column, custom }
    }
}

impl<F, G> ColumnSource for InPlace<F, G>
where
    F: FnMut(usize, &Column) -> Result<Value>,
    G: FnMut(usize) -> Result<CustomFields>,
{
    #[inline]
    fn next_value(&mut self) -> Result<Value> {
        let column =
            self.columns.next().ok_or_else(|| Error::internal("a row has fewer columns than its kind"))?;
        let value = (self.column)(self.idx, column)?;
        self.idx += 1;
        Ok(value)
    }

    fn custom_fields(&mut self) -> Result<CustomFields> {
        (self.custom)(self.idx)
    }
}

/// A Rust field type as the column values of its field (one, or several for money and an
/// activity's target), in column order.
pub trait Columns: Sized {
    /// Appends the field's values.
    fn put(&self, out: &mut Vec<Value>);
    /// Takes the field's values, in the order [`Columns::put`] wrote them.
    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self>;
}

/// A one-column type from its value.
trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self>;
}

#[cold]
fn mismatch<T>(value: Value, what: &str) -> Result<T> {
    Err(Error::internal(format!("expected {what} in a row, found {value:?}")))
}

/// `Columns` for a type that is one column, and for its `Option` (`Null` when absent).
macro_rules! one_column {
    ($ty:ty, $what:literal, |$v:ident| $to:expr, $pattern:pat => $from:expr) => {
        impl FromValue for $ty {
            #[inline]
            fn from_value(value: Value) -> Result<Self> {
                match value {
                    $pattern => $from,
                    other => mismatch(other, $what),
                }
            }
        }

        impl Columns for $ty {
            #[inline]
            fn put(&self, out: &mut Vec<Value>) {
                let $v = self;
                out.push($to);
            }
            #[inline]
            fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
                <$ty as FromValue>::from_value(values.next_value()?)
            }
        }

        impl Columns for Option<$ty> {
            #[inline]
            fn put(&self, out: &mut Vec<Value>) {
                match self {
                    Some(v) => v.put(out),
                    None => out.push(Value::Null),
                }
            }
            #[inline]
            fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
                match values.next_value()? {
                    Value::Null => Ok(None),
                    value => <$ty as FromValue>::from_value(value).map(Some),
                }
            }
        }
    };
}

one_column!(String, "text", |v| Value::Text(Cow::Owned(v.clone())), Value::Text(s) => Ok(s.into_owned()));
one_column!(i32, "a 32-bit integer", |v| Value::Int((*v).into()), Value::Int(n) => {
    i32::try_from(n).map_err(|_| Error::internal("an integer out of range in a row"))
});
one_column!(bool, "a boolean", |v| Value::Bool(*v), Value::Bool(b) => Ok(b));
one_column!(DateTime<Utc>, "a time", |v| Value::Time(*v), Value::Time(t) => Ok(t));
one_column!(NaiveDate, "a date", |v| Value::Date(*v), Value::Date(d) => Ok(d));
one_column!(LeadStatus, "a lead status", |v| Value::Text(Cow::Borrowed(v.as_str())), Value::Text(s) => {
    LeadStatus::parse(&s).ok_or_else(|| Error::internal("an unknown lead status in a row"))
});
one_column!(ActivityKind, "an activity kind", |v| Value::Text(Cow::Borrowed(v.as_str())), Value::Text(s) => {
    ActivityKind::parse(&s).ok_or_else(|| Error::internal("an unknown activity kind in a row"))
});
one_column!(Vec<Stage>, "stages", |v| Value::Json(serde_json::to_value(v).unwrap_or_default()), Value::Json(j) => {
    serde_json::from_value(j).map_err(Error::internal)
});

impl<T: 'static> Columns for Id<T> {
    #[inline]
    fn put(&self, out: &mut Vec<Value>) {
        out.push(Value::Uuid(self.uuid()));
    }
    #[inline]
    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        match values.next_value()? {
            Value::Uuid(u) => Ok(Id::from_uuid(u)),
            other => mismatch(other, "an id"),
        }
    }
}

impl<T: 'static> Columns for Option<Id<T>> {
    #[inline]
    fn put(&self, out: &mut Vec<Value>) {
        out.push(self.map_or(Value::Null, |id| Value::Uuid(id.uuid())));
    }
    #[inline]
    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        match values.next_value()? {
            Value::Null => Ok(None),
            Value::Uuid(u) => Ok(Some(Id::from_uuid(u))),
            other => mismatch(other, "an id"),
        }
    }
}

/// Two columns: the amount in minor units, then the currency.
impl Columns for Option<Money> {
    #[inline]
    fn put(&self, out: &mut Vec<Value>) {
        match self {
            Some(m) => out.extend([Value::Int(m.amount_minor), Value::Text(Cow::Owned(m.currency.clone()))]),
            None => out.extend([Value::Null, Value::Null]),
        }
    }
    #[inline]
    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        match (values.next_value()?, values.next_value()?) {
            (Value::Null, Value::Null) => Ok(None),
            (Value::Int(amount_minor), Value::Text(currency)) => {
                Ok(Some(Money { amount_minor, currency: currency.into_owned() }))
            }
            _ => Err(Error::internal("expected an amount and a currency, or neither, in a row")),
        }
    }
}

/// The same four columns, at most one set (a task's related record).
impl Columns for Option<ActivityTarget> {
    #[inline]
    fn put(&self, out: &mut Vec<Value>) {
        match self {
            Some(target) => target.put(out),
            None => out.extend([Value::Null, Value::Null, Value::Null, Value::Null]),
        }
    }
    #[inline]
    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        let mut target = None;
        for kind in [Kind::Lead, Kind::Contact, Kind::Account, Kind::Deal] {
            match values.next_value()? {
                Value::Null => {}
                Value::Uuid(id) if target.is_none() => target = ActivityTarget::from_parts(kind, id),
                other => return mismatch(other, "at most one of four record references"),
            }
        }
        Ok(target)
    }
}

/// Four columns, `lead_id`, `contact_id`, `account_id`, `deal_id`: exactly one is set.
impl Columns for ActivityTarget {
    #[inline]
    fn put(&self, out: &mut Vec<Value>) {
        let (kind, id) = self.parts();
        for column in [Kind::Lead, Kind::Contact, Kind::Account, Kind::Deal] {
            out.push(if column == kind { Value::Uuid(id) } else { Value::Null });
        }
    }
    #[inline]
    fn take<S: ColumnSource + ?Sized>(values: &mut S) -> Result<Self> {
        let target: Option<ActivityTarget> = Columns::take(values)?;
        target.ok_or_else(|| Error::internal("an activity row without a target"))
    }
}
