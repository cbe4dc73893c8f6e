//! Text search semantics shared by every store: what counts as a word, and how a query matches.
//!
//! A record's searchable text (names, e-mail, company) is split into [`words`]; a query `q` is
//! split the same way into at most eight [`query_terms`]; a record matches when every term is a
//! prefix of one of its words. Both stores keep the words in a B-tree of terms (one row per
//! record and word, cut to [`MAX_TERM_CHARS`]) and look a term up as the range from the term to
//! its [`prefix_successor`]; because both sides come from these functions, every store returns
//! the same results for the same query.

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

/// Whether `term` is a term [`query_terms`] can produce: one lower-case alphanumeric word of at
/// most [`MAX_TERM_CHARS`] characters. Stored words are all of this form, so a store answers a
/// search holding any other term with no rows, without asking its database (a host may call a
/// store directly, with terms core never made).
pub fn is_term(term: &str) -> bool {
    let mut terms = words(term);
    terms.next().is_some_and(|w| w == term && term.chars().count() <= MAX_TERM_CHARS)
        && terms.next().is_none()
}

/// The least string greater than every string that starts with `prefix`, in code point order —
/// the upper end of the range of words a term prefixes, for stores that keep words in a B-tree
/// (UTF-8 bytes compared as they are): `prefix` with its last character incremented,
/// dropping trailing characters that cannot be. Terms are non-empty alphanumeric words, so the
/// result is never empty in practice; an empty one would only make the range empty.
pub fn prefix_successor(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            break;
        }
    }
    chars.into_iter().collect()
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

    #[test]
    fn terms_are_what_query_terms_makes() {
        for q in ["Jane.DOE@Acme.com", "José Ñandú İstanbul", &"x".repeat(100)] {
            assert!(query_terms(q).iter().all(|t| is_term(t)), "{q}");
        }
        for bad in ["", "Acme", "a b", "a'", "a\\", "o'brien", "a:*", "a\0", "a&b", &"x".repeat(65)] {
            assert!(!is_term(bad), "{bad:?}");
        }
        assert!(is_term("ñandú") && is_term("x1") && is_term(&"x".repeat(64)));
    }

    #[test]
    fn a_prefix_successor_bounds_exactly_the_words_that_start_with_it() {
        assert_eq!(prefix_successor("acm"), "acn");
        assert_eq!(prefix_successor("az"), "a{");
        assert_eq!(prefix_successor("jos\u{e9}"), "jos\u{ea}");
        // Surrogates are not characters: the successor of U+D7FF is U+E000.
        assert_eq!(prefix_successor("a\u{d7ff}"), "a\u{e000}");
        assert_eq!(prefix_successor("a\u{10ffff}"), "b");
        for word in ["acm", "acme", "acm\u{10ffff}x"] {
            assert!(word >= "acm" && word < prefix_successor("acm").as_str(), "{word}");
        }
        assert!("acn" >= prefix_successor("acm").as_str());
    }
}
