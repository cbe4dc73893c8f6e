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
/// its builder methods: `nullable`, `filter`, `sort`, `search`, `personal`, `write(…)`), mapped
/// through the field type's [`Columns`]. An entry `name => one_of [a: type, b: type, …],
/// modifiers;` is one struct field held in several reference columns of which exactly one is set
/// (an activity's target): each column is a field of the description, and together they are a
/// [`KindDef::one_of`] group. `custom_fields: <struct field>` gives the kind custom fields. The
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
            carries_activities: $activities:literal,
            $(custom_fields: $cf:ident,)?
        }
        fields { $($fields:tt)* }
    ) => {
        $crate::record_kind!(@munch
            [[$(#[$doc])*] $def $record $name $plural $activities [$($cf)?]]
            [] [] [];
            $($fields)*
        );
    };

    // One struct field held in several reference columns, exactly one of them set.
    (@munch $head:tt [$($defs:tt)*] [$($mapped:ident)*] [$($groups:tt)*];
        $field:ident => one_of [$($member:ident : $mty:expr),+ $(,)?] $(, $m:ident $(($a:expr))?)* ;
        $($rest:tt)*
    ) => {
        $crate::record_kind!(@members $head [$($defs)*] [$($mapped)* $field]
            [$($groups)* &[$(stringify!($member)),+],]
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
    (@munch [[$(#[$doc:meta])*] $def:ident $record:ident $name:literal $plural:literal $activities:literal [$($cf:ident)?]]
        [$($defs:tt)*] [$($mapped:ident)*] [$($groups:tt)*];
    ) => {
        $(#[$doc])*
        pub static $def: $crate::kind::KindDef = $crate::kind::KindDef {
            name: $name,
            plural: $plural,
            kind: $crate::model::Kind::$record,
            resource: $crate::policy::Resource::$record,
            fields: &[$($defs)*],
            custom_fields: $crate::record_kind!(@has $($cf)?),
            one_of: &[$($groups)*],
            carries_activities: $activities,
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

    (@has) => { false };
    (@has $cf:ident) => { true };
    (@custom_in $values:ident $cf:ident) => { $values.custom_fields()? };
    (@custom_out $this:ident) => { None };
    (@custom_out $this:ident $cf:ident) => { Some($this.$cf.clone()) };
}
