//! The parse mode of typed conversions, a client setting (so it exists without the typed
//! features, which are the only ones that read it).

use std::fmt;

/// How strictly a typed conversion treats data that does not match the FHIR release's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// Anything outside the schema is an error carrying its JSON pointer and the expected type:
    /// unknown properties, empty arrays, `null` properties, primitives of the wrong JSON type.
    Strict,
    /// Vendor data is accepted without losing a value: unknown properties are kept as the
    /// typed value's extras, empty arrays and `null`s are treated as absent, and wrong-typed primitives are
    /// converted when the conversion is lossless. Every such event is reported. Values that
    /// cannot be converted are still errors. The default, for reads.
    #[default]
    Lenient,
}

impl fmt::Display for ParseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseMode::Strict => "strict",
            ParseMode::Lenient => "lenient",
        })
    }
}
