//! The console's words, in English and Simplified Chinese. Each language
//! has one catalogue (`i18n/en.txt`, `i18n/zh-CN.txt`) of `key = text`
//! lines, embedded in the binary; `{name}` in a text is filled in by the
//! page. A test holds the two catalogues to the same keys and the same
//! placeholders.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::{header, HeaderMap};

/// The cookie that keeps a visitor's choice of language.
pub const LANG_COOKIE: &str = "berth_lang";

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The language tag, as in `lang=` and `Accept-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-CN",
        }
    }

    /// The other language, which the switch on every page offers.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Zh,
            Self::Zh => Self::En,
        }
    }

    /// A tag as a language, if it is one of ours.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "en" || tag.starts_with("en-") {
            Some(Self::En)
        } else if tag == "zh" || tag.starts_with("zh-") {
            // Traditional Chinese readers read Simplified better than
            // English, on the whole: every `zh` is served Simplified.
            Some(Self::Zh)
        } else {
            None
        }
    }

    /// The visitor's language: the switch's cookie if set, else the best
    /// of `Accept-Language` by quality, else English.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let chosen = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(&format!("{LANG_COOKIE}=")))
            .and_then(Self::from_tag);
        if let Some(lang) = chosen {
            return lang;
        }
        let accepted = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut best: Option<(f32, Self)> = None;
        for item in accepted.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Self::from_tag) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Self::En, |(_, lang)| lang)
    }
}

type Catalogue = HashMap<&'static str, &'static str>;

/// Parses `key = text` lines; blank lines and `#` comments are skipped.
fn parse(text: &'static str) -> Catalogue {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

static EN: LazyLock<Catalogue> = LazyLock::new(|| parse(include_str!("../i18n/en.txt")));
static ZH: LazyLock<Catalogue> = LazyLock::new(|| parse(include_str!("../i18n/zh-CN.txt")));

/// The words of one language, as a page uses them.
#[derive(Clone, Copy)]
pub struct Words {
    /// The language.
    pub lang: Lang,
}

impl Words {
    /// The text under `key`. A key missing from a catalogue (which the
    /// parity test forbids) shows as itself rather than as nothing.
    pub fn t<'k>(&self, key: &'k str) -> &'k str
    where
        'static: 'k,
    {
        let catalogue: &Catalogue = match self.lang {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        };
        catalogue.get(key).copied().unwrap_or(key)
    }

    /// Whether the catalogue has `key`: pages look up optional, more
    /// specific texts (an error of one action) before general ones.
    pub fn has(&self, key: &str) -> bool {
        match self.lang {
            Lang::En => EN.contains_key(key),
            Lang::Zh => ZH.contains_key(key),
        }
    }

    /// The text under `key` with its one placeholder, `{name}`, filled in:
    /// the form templates use.
    pub fn with(&self, key: &str, name: &str, value: &str) -> String {
        self.f(key, &[(name, value)])
    }

    /// The text under `key` with its `{name}` placeholders filled in.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        args.iter()
            .fold(self.t(key).to_owned(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
            .collect()
    }

    #[test]
    fn both_catalogues_have_every_key_with_the_same_placeholders() {
        let en: BTreeSet<_> = EN.keys().collect();
        let zh: BTreeSet<_> = ZH.keys().collect();
        assert_eq!(
            en.difference(&zh).collect::<Vec<_>>(),
            Vec::<&&&str>::new(),
            "keys only in English"
        );
        assert_eq!(
            zh.difference(&en).collect::<Vec<_>>(),
            Vec::<&&&str>::new(),
            "keys only in Chinese"
        );
        for key in en {
            assert_eq!(placeholders(EN[key]), placeholders(ZH[key]), "{key}");
            assert!(!EN[key].is_empty() && !ZH[key].is_empty(), "{key} is empty");
        }
    }

    #[test]
    fn a_catalogue_line_appears_once() {
        for text in [
            include_str!("../i18n/en.txt"),
            include_str!("../i18n/zh-CN.txt"),
        ] {
            let mut seen = BTreeSet::new();
            for line in text
                .lines()
                .filter(|l| l.contains('=') && !l.starts_with('#'))
            {
                let key = line.split('=').next().unwrap_or_default().trim();
                assert!(seen.insert(key), "{key} is defined twice");
            }
        }
    }

    #[test]
    fn the_language_follows_the_cookie_then_the_best_accepted() {
        let with = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            Lang::negotiate(&h)
        };
        assert_eq!(with(&[]), Lang::En);
        assert_eq!(
            with(&[("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")]),
            Lang::Zh
        );
        assert_eq!(
            with(&[("accept-language", "fr, en;q=0.5, zh;q=0.7")]),
            Lang::Zh
        );
        assert_eq!(with(&[("accept-language", "de")]), Lang::En);
        assert_eq!(
            with(&[
                ("accept-language", "zh-CN"),
                ("cookie", "a=b; berth_lang=en")
            ]),
            Lang::En
        );
    }
}
