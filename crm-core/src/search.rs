//! Text search semantics shared by every store: what counts as a word, and how a query matches.
//!
//! A record's searchable text (names, e-mail, company) is split into [`words`]; a query `q` is
//! split the same way into at most eight [`query_terms`]; a record matches when every term is a
//! prefix of one of its words. Stores index the words (FTS5, `tsvector`) so a search is an
//! index lookup, and because both sides come from these functions, every store returns the same
//! results for the same query.

/// Most query terms honoured.
pub const MAX_QUERY_TERMS: usize = 8;
/// Longest query term kept, in characters.
pub const MAX_TERM_CHARS: usize = 64;

/// Lower-case alphanumeric words of `text`, in order (`"Jane.Doe@Acme.com"` → jane, doe, acme, com).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().flat_map(char::to_lowercase).filter(|c| c.is_alphanumeric()).collect::<String>())
        .filter(|w| !w.is_empty())
}

/// The terms of a query: its first eight words, each cut to 64 characters.
pub fn query_terms(q: &str) -> Vec<String> {
    words(q).map(|w| w.chars().take(MAX_TERM_CHARS).collect()).take(MAX_QUERY_TERMS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_alphanumeric() {
        assert_eq!(query_terms("  Jane.DOE@Acme.com "), ["jane", "doe", "acme", "com"]);
        assert!(query_terms("@@ --").is_empty());
        assert_eq!(query_terms("a b c d e f g h i j").len(), MAX_QUERY_TERMS);
        assert_eq!(words("José Ñandú").collect::<Vec<_>>(), ["josé", "ñandú"]);
    }
}
