//! A repository's attributes and a share's terms: validated once at the
//! edge, like names, so a decision never holds an out-of-range value.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::limits::{MAX_DESCRIPTION_CHARS, MAX_SHARE_NOTE_CHARS};

/// What kind of software a repository holds, as the console groups them.
/// Variants are only ever appended: their position is part of the encoded
/// log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// Application servers.
    AppServer,
    /// Linux base images.
    Linux,
    /// Windows base images.
    Windows,
    /// Images for ARM machines.
    Arm,
    /// Frameworks.
    Framework,
    /// Databases.
    Database,
    /// Language runtimes.
    Language,
    /// Anything else (the default).
    Other,
}

impl Category {
    /// Every category, in the order the console lists them.
    pub const ALL: [Self; 8] = [
        Self::AppServer,
        Self::Linux,
        Self::Windows,
        Self::Arm,
        Self::Framework,
        Self::Database,
        Self::Language,
        Self::Other,
    ];

    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppServer => "app-server",
            Self::Linux => "linux",
            Self::Windows => "windows",
            Self::Arm => "arm",
            Self::Framework => "framework",
            Self::Database => "database",
            Self::Language => "language",
            Self::Other => "other",
        }
    }

    /// Parses the API's word.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let words: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                DomainError::AttributeInvalid(format!(
                    "category must be one of {}",
                    words.join(", ")
                ))
            })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text of at most `N` Unicode scalar values (not bytes).
fn bounded(s: &str, max: usize, what: &str) -> Result<String, DomainError> {
    let n = s.chars().count();
    if n > max {
        return Err(DomainError::AttributeInvalid(format!(
            "{what} has {n} characters; at most {max} are allowed"
        )));
    }
    Ok(s.to_owned())
}

/// A repository description: 0–30 000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    /// Checks the length.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        bounded(s, MAX_DESCRIPTION_CHARS, "description").map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A share's note: 0–1 000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShareNote(String);

impl ShareNote {
    /// Checks the length.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        bounded(s, MAX_SHARE_NOTE_CHARS, "description").map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, DomainError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(t: $name) -> String {
                t.0
            }
        }
    };
}

text_conversions!(Description);
text_conversions!(ShareNote);

/// How long a share lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deadline {
    /// Until revoked.
    Forever,
    /// Until this instant (exclusive): the start of the day after the date
    /// the sharer named, UTC.
    Until(DateTime<Utc>),
}

impl Deadline {
    /// Parses `forever` or a `YYYY-MM-DD` date; a date lasts to the end of
    /// that day, UTC.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s == "forever" {
            return Ok(Self::Forever);
        }
        let invalid = || {
            DomainError::AttributeInvalid(format!(
                "deadline must be \"forever\" or a date such as 2027-01-31, not {s:?}"
            ))
        };
        let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| invalid())?;
        let next = day.checked_add_days(Days::new(1)).ok_or_else(invalid)?;
        Ok(Self::Until(next.and_time(chrono::NaiveTime::MIN).and_utc()))
    }

    /// Whether the share still works at `now`.
    pub fn holds_at(self, now: DateTime<Utc>) -> bool {
        match self {
            Self::Forever => true,
            Self::Until(end) => now < end,
        }
    }

    /// The API's form: `forever`, or the last day the share works.
    pub fn label(self) -> String {
        match self {
            Self::Forever => "forever".into(),
            Self::Until(end) => (end - chrono::Duration::days(1))
                .date_naive()
                .format("%Y-%m-%d")
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn categories_round_trip_and_refuse_others() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Ok(c));
        }
        assert!(Category::parse("games").is_err());
        assert!(Category::parse("Linux").is_err());
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let han = "镜".repeat(MAX_DESCRIPTION_CHARS);
        assert!(han.len() > MAX_DESCRIPTION_CHARS);
        assert!(Description::parse(&han).is_ok());
        assert!(Description::parse(&format!("{han}x")).is_err());
        assert!(ShareNote::parse(&"é".repeat(MAX_SHARE_NOTE_CHARS)).is_ok());
        assert!(ShareNote::parse(&"é".repeat(MAX_SHARE_NOTE_CHARS + 1)).is_err());
    }

    #[test]
    fn a_dated_deadline_lasts_to_the_end_of_that_day_utc() {
        let d = Deadline::parse("2027-01-31").unwrap();
        let at = |h, m| Utc.with_ymd_and_hms(2027, 1, 31, h, m, 0).unwrap();
        assert!(d.holds_at(at(23, 59)));
        assert!(!d.holds_at(Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()));
        assert_eq!(d.label(), "2027-01-31");
        assert!(Deadline::parse("forever").unwrap().holds_at(at(0, 0)));
        assert!(Deadline::parse("2027-02-30").is_err());
        assert!(Deadline::parse("tomorrow").is_err());
    }
}
