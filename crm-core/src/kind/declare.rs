//! [`record_kind!`](crate::record_kind): one declaration per kind gives its [`KindDef`] and its
//! [`Stored`] mapping, so no field is listed twice.
//!
//! [`KindDef`]: crate::kind::KindDef
//! [`Stored`]: crate::kind::Stored

/// Declares a record kind's description and its row mapping from one list of its fields.
///
/// ```ignore
/// crm_core::record_kind! {
///     /// The description of leads.
///     pub static LEAD for Lead {
///         name: "lead",
///         plural: "leads",
///         about: "Prospects not yet qualified.",
///         carries_activities: true,
///         custom_fields: custom_fields,
///     }
///     fields {
///         first_name: FieldType::Text, nullable, search, personal;
///         status: FieldType::Enum(&LEAD_STATUSES), filter;
///     }
/// }
/// ```
///
/// Each entry `name: type, modifiers;` is one struct field and one [`FieldDef`] (`modifiers` are
/// its builder methods: `nullable`, `filter`, `sort`, `search`, `personal`, `owns`, `write(…)`), mapped
/// through the field type's [`Columns`]. An entry `name => one_of [a: type, b: type, …],
/// modifiers;` is one struct field held in several reference columns of which exactly one is set
/// (an activity's target): each column is a field of the description, and together they are a
/// [`KindDef::one_of`] group; `name => at_most_one_of [...]` is the same with none set allowed (a
/// task's related record). `custom_fields: <struct field>` gives the kind custom fields, and
/// `timeline_at: "<instant field>"` puts its records in the timelines of the records they
/// reference, `filled_one_of: &[&[…]]` groups of text fields of which one must be filled, and
/// `named_filters: &[…]` its [`NamedFilter`](crate::kind::NamedFilter)s. The
/// struct literal the mapping builds names every field, so a struct field the declaration misses
/// is a compile error. The kind and policy resource are the variants named like the struct.
///
/// [`FieldDef`]: crate::kind::FieldDef
/// [`Columns`]: crate::kind::Columns
/// [`KindDef::one_of`]: crate::kind::KindDef::one_of
#[macro_export]
macro_rules! record_kind {
    (
        $(#[$doc:meta])*
        pub static $def:ident for $record:ident {
            name: $name:literal,
            plural: $plural:literal,
            about: $about:literal,
            carries_activities: $activities:literal,
            $(timeline_at: $at:literal,)?
            $(custom_fields: $cf:ident,)?
            $(filled_one_of: $filled:expr,)?
            $(named_filters: $named:expr,)?
        }
        fields { $($fields:tt)* }
    ) => {
        $crate::record_kind!(@munch
            [[$(#[$doc])*] $def $record $name $plural $about $activities [$($at)?] [$($cf)?] [$($named)?] [$($filled)?]]
            [] [] [];
            $($fields)*
        );
    };

    // One struct field held in several reference columns: `one_of` (exactly one of them set)
    // or `at_most_one_of`.
    (@munch $head:tt [$($defs:tt)*] [$($mapped:ident)*] [$($groups:tt)*];
        $field:ident => $group:ident [$($member:ident : $mty:expr),+ $(,)?] $(, $m:ident $(($a:expr))?)* ;
        $($rest:tt)*
    ) => {
        $crate::record_kind!(@members $head [$($defs)*] [$($mapped)* $field]
            [$($groups)* $crate::kind::OneOf {
                fields: &[$(stringify!($member)),+],
                required: $crate::record_kind!(@required $group),
            },]
            [$($member $mty;)+] {$(.$m($($a)?))*};
            $($rest)*
        );
    };
    (@members $head:tt [$($defs:tt)*] $mapped:tt $groups:tt
        [$first:ident $fty:expr; $($more:ident $mty:expr;)*] {$($mods:tt)*}; $($rest:tt)*
    ) => {
        $crate::record_kind!(@members $head
            [$($defs)* $crate::kind::FieldDef::new(stringify!($first), $fty) $($mods)*,]
            $mapped $groups [$($more $mty;)*] {$($mods)*}; $($rest)*
        );
    };
    (@members $head:tt $defs:tt $mapped:tt $groups:tt [] {$($mods:tt)*}; $($rest:tt)*) => {
        $crate::record_kind!(@munch $head $defs $mapped $groups; $($rest)*);
    };

    // One struct field, one described field.
    (@munch $head:tt [$($defs:tt)*] [$($mapped:ident)*] $groups:tt;
        $field:ident : $ty:expr $(, $m:ident $(($a:expr))?)* ;
        $($rest:tt)*
    ) => {
        $crate::record_kind!(@munch $head
            [$($defs)* $crate::kind::FieldDef::new(stringify!($field), $ty) $(.$m($($a)?))*,]
            [$($mapped)* $field] $groups;
            $($rest)*
        );
    };

    // Every field read: the description and the mapping.
    (@munch [[$(#[$doc:meta])*] $def:ident $record:ident $name:literal $plural:literal $about:literal $activities:literal [$($at:literal)?] [$($cf:ident)?] [$($named:expr)?] [$($filled:expr)?]]
        [$($defs:tt)*] [$($mapped:ident)*] [$($groups:tt)*];
    ) => {
        $(#[$doc])*
        pub static $def: $crate::kind::KindDef = $crate::kind::KindDef {
            name: $name,
            plural: $plural,
            about: $about,
            type_name: stringify!($record),
            kind: $crate::model::Kind::$record,
            resource: $crate::policy::Resource::$record,
            fields: &[$($defs)*],
            custom_fields: $crate::record_kind!(@has $($cf)?),
            one_of: &[$($groups)*],
            carries_activities: $activities,
            timeline_at: $crate::record_kind!(@some $($at)?),
            named_filters: $crate::record_kind!(@named $($named)?),
            filled_one_of: $crate::record_kind!(@named $($filled)?),
            column_cache: ::std::sync::OnceLock::new(),
        };

        impl $crate::kind::Stored for $record {
            const DEF: &'static $crate::kind::KindDef = &$def;

            fn to_row(&self) -> $crate::kind::RecordRow {
                let mut values = ::std::vec::Vec::with_capacity($def.fields.len() + 1);
                $($crate::kind::Columns::put(&self.$mapped, &mut values);)*
                $crate::kind::RecordRow {
                    def: &$def,
                    meta: $crate::kind::RowMeta::of(&self.meta),
                    values,
                    custom_fields: $crate::record_kind!(@custom_out self $($cf)?),
                }
            }

            fn read<S: $crate::kind::ColumnSource + ?Sized>(
                meta: $crate::kind::RowMeta,
                values: &mut S,
            ) -> $crate::Result<Self> {
                Ok($record {
                    meta: meta.typed(),
                    $($mapped: $crate::kind::Columns::take(values)?,)*
                    $($cf: $crate::record_kind!(@custom_in values $cf),)?
                })
            }
        }
    };

    (@required one_of) => { true };
    (@required at_most_one_of) => { false };
    (@some) => { None };
    (@some $at:literal) => { Some($at) };
    (@named) => { &[] };
    (@named $named:expr) => { $named };
    (@has) => { false };
    (@has $cf:ident) => { true };
    (@custom_in $values:ident $cf:ident) => { $values.custom_fields()? };
    (@custom_out $this:ident) => { None };
    (@custom_out $this:ident $cf:ident) => { Some($this.$cf.clone()) };
}

/// Declares an enum stored and sent as its wire names (a task's priority), each the snake case
/// of its variant (a unit test checks they agree): the enum with its serde names, `ALL`,
/// `NAMES`, `as_str` and `parse`, and its [`Columns`](crate::kind::Columns) mapping
/// as one text column (or `NULL` for an absent `Option`), so a kind's enum needs no code
/// elsewhere. A stored name the enum does not know is an internal error, never a default.
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        pub enum $name:ident as $what:literal {
            $($(#[$vdoc:meta])* $variant:ident = $wire:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")] // utoipa reads this, not a rename per variant
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($wire),+].len()] = [$($name::$variant),+];

            /// Every wire name, in declaration order (a description's
            /// [`FieldType::Enum`](crate::kind::FieldType::Enum)).
            pub const NAMES: [&'static str; [$($wire),+].len()] = [$($wire),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }

            fn from_column(value: $crate::kind::Value) -> $crate::Result<Self> {
                match value {
                    $crate::kind::Value::Text(s) => Self::parse(&s)
                        .ok_or_else(|| $crate::Error::internal(concat!("an unknown ", $what, " in a row"))),
                    other => Err($crate::Error::internal(format!("expected {} in a row, found {other:?}", $what))),
                }
            }
        }

        impl $crate::kind::Columns for $name {
            #[inline]
            fn put(&self, out: &mut Vec<$crate::kind::Value>) {
                out.push($crate::kind::Value::Text(::std::borrow::Cow::Borrowed(self.as_str())));
            }
            #[inline]
            fn take<S: $crate::kind::ColumnSource + ?Sized>(values: &mut S) -> $crate::Result<Self> {
                Self::from_column(values.next_value()?)
            }
        }

        impl $crate::kind::Columns for Option<$name> {
            #[inline]
            fn put(&self, out: &mut Vec<$crate::kind::Value>) {
                match self {
                    Some(value) => $crate::kind::Columns::put(value, out),
                    None => out.push($crate::kind::Value::Null),
                }
            }
            #[inline]
            fn take<S: $crate::kind::ColumnSource + ?Sized>(values: &mut S) -> $crate::Result<Self> {
                match values.next_value()? {
                    $crate::kind::Value::Null => Ok(None),
                    value => $name::from_column(value).map(Some),
                }
            }
        }
    };
}
