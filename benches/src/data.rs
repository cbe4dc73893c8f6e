//! The benchmark data: lead `i` is a pure function of `i`, so a seeded database can be rebuilt
//! (or reused) and both sides of a comparison insert the same rows.

use crm_core::model::{LeadStatus, NewLead};

const FIRST: [&str; 64] = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Dennis",
    "Radia",
    "Ken",
    "Hedy",
    "Tim",
    "Karen",
    "Niklaus",
    "Sophie",
    "Linus",
    "Anita",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Mary",
    "Guido",
    "Adele",
    "James",
    "Jean",
    "Robin",
    "Fran",
    "Claude",
    "Joan",
    "Vint",
    "Evelyn",
    "Bob",
    "Annie",
    "Ivan",
    "Betty",
    "Peter",
    "Lynn",
    "Butler",
    "Carol",
    "Seymour",
    "Susan",
    "Marvin",
    "Ruth",
    "Alonzo",
    "Kathleen",
    "Charles",
    "Lois",
    "Michael",
    "Elizabeth",
    "Larry",
    "Cynthia",
    "Whitfield",
    "Valerie",
    "Ralph",
    "Irene",
    "Martin",
    "Judith",
    "Andrew",
    "Sally",
    "Brian",
    "Dorothy",
    "Fred",
];

/// Surname syllables: all three letters, so a surname splits into syllables one way only.
const SYL: [&str; 40] = [
    "bal", "ber", "cor", "dan", "del", "fen", "gar", "hol", "jor", "kal", "lam", "len", "mar", "mel", "nor",
    "pal", "per", "kin", "ral", "ren", "sal", "sen", "tal", "ter", "val", "ven", "wal", "wen", "yar", "zel",
    "bor", "dun", "fal", "gil", "hun", "lor", "mun", "pol", "rus", "tor",
];

/// Company-name syllables, disjoint from the surname ones (so a company search never
/// prefix-matches a surname).
const CO: [&str; 10] = ["xa", "xe", "xi", "xo", "xu", "qa", "qe", "qi", "qo", "qu"];

/// Companies: 100, so a company word is on 1 % of the leads.
pub const COMPANIES: usize = 100;

/// The surname of lead `i`: four syllables (the base-40 digits of `i`), unique below 2.56 M.
pub fn surname(i: usize) -> String {
    let mut s = String::with_capacity(16);
    let mut n = i;
    for k in 0..4 {
        let syl = SYL[n % SYL.len()];
        n /= SYL.len();
        if k == 0 {
            s.push_str(&syl[..1].to_ascii_uppercase());
            s.push_str(&syl[1..]);
        } else {
            s.push_str(syl);
        }
    }
    s
}

/// The company word of lead `i`, e.g. `Xaqe`.
pub fn company_word(i: usize) -> String {
    let c = i % COMPANIES;
    let (a, b) = (CO[c % 10], CO[c / 10]);
    format!("{}{}{}", a[..1].to_ascii_uppercase(), &a[1..], b)
}

/// The four statuses a lead is imported with, in turn (`qualified` is a quarter of them).
pub const STATUSES: [LeadStatus; 4] =
    [LeadStatus::New, LeadStatus::Contacted, LeadStatus::Qualified, LeadStatus::Unqualified];

/// The plain fields of lead `i`, for the raw baselines.
#[derive(Debug, Clone)]
pub struct LeadFields {
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E-mail.
    pub email: String,
    /// Company.
    pub company: String,
    /// Status.
    pub status: LeadStatus,
}

/// Lead `i`'s fields.
pub fn fields(i: usize) -> LeadFields {
    let first = FIRST[i % FIRST.len()];
    let last = surname(i);
    let company = company_word(i);
    LeadFields {
        email: format!("{}.{}@{}.example", first.to_lowercase(), last.to_lowercase(), company.to_lowercase()),
        first_name: first.to_owned(),
        last_name: last,
        company: format!("{company} Industries"),
        status: STATUSES[i % STATUSES.len()],
    }
}

impl LeadFields {
    /// The same lead as library input.
    pub fn new_lead(&self) -> NewLead {
        NewLead {
            first_name: Some(self.first_name.clone()),
            last_name: Some(self.last_name.clone()),
            email: Some(self.email.clone()),
            company: Some(self.company.clone()),
            status: Some(self.status),
            ..NewLead::default()
        }
    }

    /// The words a store indexes for search, computed the plain way (lower-case, split on
    /// anything not alphanumeric) — what a hand-written insert would do.
    pub fn search_words(&self) -> String {
        let all = [&self.first_name, &self.last_name, &self.email, &self.company];
        let mut out = String::with_capacity(96);
        for field in all {
            for word in field.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&word.to_ascii_lowercase());
            }
        }
        out
    }
}

/// Library input for leads `range`.
pub fn new_leads(range: std::ops::Range<usize>) -> Vec<NewLead> {
    range.map(|i| fields(i).new_lead()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surnames_are_unique_and_words_match_the_library() {
        assert_eq!(surname(0), "Balbalbalbal");
        assert_ne!(surname(1), surname(40));
        let f = fields(12_345);
        let library: Vec<String> = [&f.first_name, &f.last_name, &f.email, &f.company]
            .into_iter()
            .flat_map(|s| crm_core::search::words(s).collect::<Vec<_>>())
            .collect();
        assert_eq!(f.search_words(), library.join(" "));
    }
}
