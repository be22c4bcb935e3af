//! Search-log functions: query normalisation, Hangul helpers, referrer channels, user agents,
//! age bands and CTR.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};
use unicode_normalization::UnicodeNormalization;

use crate::hangul;
use crate::udf::{Returns, SEARCH, as_utf8, map_str, str_at, udf};

fn string1() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::LargeUtf8]),
            TypeSignature::Exact(vec![DataType::Utf8View]),
        ],
        Volatility::Immutable,
    )
}

/// NFKC, case fold, trim, collapse inner white space.
pub fn normalize_query(s: &str) -> String {
    let n: String = s.nfkc().collect::<String>().to_lowercase();
    n.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Host of a URL, lower-cased; `None` when it has none.
pub fn url_host(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let parsed = url::Url::parse(t)
        .or_else(|_| url::Url::parse(&format!("http://{t}")))
        .ok()?;
    parsed
        .host_str()
        .map(|h| h.trim_start_matches("www.").to_lowercase())
        .filter(|h| !h.is_empty())
}

fn host_is(host: &str, domain: &str) -> bool {
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// Channel of a referrer: direct, naver, google, daum, social, internal, other.
pub fn inflow_channel(referrer: Option<&str>, own: Option<&str>) -> &'static str {
    let Some(r) = referrer
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "-")
    else {
        return "direct";
    };
    let Some(host) = url_host(r) else {
        return "other";
    };
    if let Some(own) = own
        .map(|o| o.trim().trim_start_matches("www.").to_lowercase())
        .filter(|o| !o.is_empty())
        && host_is(&host, &own)
    {
        return "internal";
    }
    if ["naver.com", "naver.me", "naver.net"]
        .iter()
        .any(|d| host_is(&host, d))
    {
        return "naver";
    }
    if host.split('.').any(|p| p == "google") {
        return "google";
    }
    if ["daum.net", "daum.co.kr", "kakao.com"]
        .iter()
        .any(|d| host_is(&host, d))
        && !host_is(&host, "story.kakao.com")
    {
        return "daum";
    }
    const SOCIAL: [&str; 11] = [
        "facebook.com",
        "fb.com",
        "t.co",
        "twitter.com",
        "x.com",
        "instagram.com",
        "youtube.com",
        "youtu.be",
        "story.kakao.com",
        "band.us",
        "tiktok.com",
    ];
    if SOCIAL.iter().any(|d| host_is(&host, d)) {
        return "social";
    }
    "other"
}

/// Search keywords carried in a search-engine referrer (`query=`, `q=`, ...), URL-decoded.
pub fn referrer_query(r: &str) -> Option<String> {
    let parsed = url::Url::parse(r.trim()).ok()?;
    for key in ["query", "q", "p", "wd", "oquery"] {
        if let Some((_, v)) = parsed.query_pairs().find(|(k, _)| k == key) {
            let v = v.trim().to_string();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    None
}

/// `mobile`, `tablet`, `pc` or `bot`.
pub fn device_type(ua: &str) -> &'static str {
    let l = ua.to_ascii_lowercase();
    if [
        "bot",
        "crawler",
        "spider",
        "slurp",
        "yeti",
        "daumoa",
        "facebookexternalhit",
        "curl/",
        "wget/",
        "python-requests",
    ]
    .iter()
    .any(|k| l.contains(k))
    {
        return "bot";
    }
    if l.contains("ipad")
        || l.contains("tablet")
        || (l.contains("android") && !l.contains("mobile"))
    {
        return "tablet";
    }
    if l.contains("mobile") || l.contains("iphone") || l.contains("android") || l.contains("ipod") {
        return "mobile";
    }
    "pc"
}

fn extractor() -> Option<&'static ua_parser::Extractor<'static>> {
    static EX: OnceLock<Option<ua_parser::Extractor<'static>>> = OnceLock::new();
    EX.get_or_init(|| {
        static DATA: &str = include_str!("../data/uap-regexes.json");
        let regexes: ua_parser::Regexes<'static> = serde_json::from_str(DATA).ok()?;
        ua_parser::Extractor::try_from(regexes).ok()
    })
    .as_ref()
}

/// Browser family by the uap-core rules (`Chrome`, `Mobile Safari`, `Googlebot`, ...).
pub fn ua_browser(ua: &str) -> Option<String> {
    extractor()?.ua.extract(ua).map(|v| v.family.to_string())
}

/// Operating system family by the uap-core rules (`Windows`, `iOS`, `Android`, ...).
pub fn ua_os(ua: &str) -> Option<String> {
    extractor()?.os.extract(ua).map(|v| v.os.to_string())
}

fn int_column(a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let a = cast(a, &DataType::Int64)?;
    Ok(a.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .iter()
        .collect())
}

fn age_band_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let birth = int_column(&args[0])?;
    let at = int_column(&args[1])?;
    let out: Int32Array = birth
        .iter()
        .zip(at.iter())
        .map(|(b, a)| match (b, a) {
            (Some(b), Some(a)) if *b > 1850 && *b <= *a && *a - *b <= 130 => {
                Some((((a - b) / 10) * 10) as i32)
            }
            _ => None,
        })
        .collect();
    Ok(Arc::new(out))
}

fn ctr_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let c = cast(&args[0], &DataType::Float64)?;
    let i = cast(&args[1], &DataType::Float64)?;
    let c = c.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let i = i.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let out: Float64Array = c
        .iter()
        .zip(i.iter())
        .map(|(c, i)| match (c, i) {
            (Some(c), Some(i)) if i != 0.0 => Some(c / i),
            _ => None,
        })
        .collect();
    Ok(Arc::new(out))
}

fn inflow_body(args: &[ArrayRef]) -> Result<ArrayRef> {
    let r = as_utf8(&args[0])?;
    let own = args.get(1).map(as_utf8).transpose()?;
    let out: StringArray = (0..r.len())
        .map(|i| {
            Some(inflow_channel(
                str_at(&r, i),
                own.as_ref().and_then(|o| str_at(o, i)),
            ))
        })
        .collect();
    Ok(Arc::new(out))
}

/// Every search-log function.
pub fn functions() -> Vec<ScalarUDF> {
    let s = || Returns::Fixed(DataType::Utf8);
    vec![
        udf(
            "normalize_query",
            string1(),
            s(),
            |a| map_str(&a[0], |v| Some(normalize_query(v))),
            SEARCH,
            "Normalises a search query: Unicode NFKC, case folding, trimming, and inner white space collapsed to one space.",
            "normalize_query(query)",
            "SELECT normalize_query('  ＡＢＣ   날씨 ') -- 'abc 날씨'",
        ),
        udf(
            "hangul_choseong",
            string1(),
            s(),
            |a| map_str(&a[0], |v| Some(hangul::choseong(v))),
            SEARCH,
            "Initial consonants (초성) of Hangul syllables; other characters are kept.",
            "hangul_choseong(text)",
            "SELECT hangul_choseong('띄어 쓰기') -- 'ㄸㅇ ㅆㄱ'",
        ),
        udf(
            "hangul_jamo",
            string1(),
            s(),
            |a| map_str(&a[0], |v| Some(hangul::jamo(v))),
            SEARCH,
            "Decomposes Hangul syllables into compatibility jamo (compound vowels and finals stay one jamo).",
            "hangul_jamo(text)",
            "SELECT hangul_jamo('한글') -- 'ㅎㅏㄴㄱㅡㄹ'",
        ),
        udf(
            "ko_to_qwerty",
            string1(),
            s(),
            |a| map_str(&a[0], |v| Some(hangul::ko_to_qwerty(v))),
            SEARCH,
            "The keys typed on a 2-beolsik keyboard for Korean text (shift for double consonants).",
            "ko_to_qwerty(text)",
            "SELECT ko_to_qwerty('한글') -- 'gksrmf'",
        ),
        udf(
            "qwerty_to_ko",
            string1(),
            s(),
            |a| map_str(&a[0], |v| Some(hangul::qwerty_to_ko(v))),
            SEARCH,
            "Korean text from keys typed in Latin mode on a 2-beolsik keyboard (fixes wrong input-mode typos).",
            "qwerty_to_ko(keys)",
            "SELECT qwerty_to_ko('vmfhsxmdpsem') -- '프론트엔드'",
        ),
        udf(
            "inflow_channel",
            Signature::one_of(
                vec![TypeSignature::String(1), TypeSignature::String(2)],
                Volatility::Immutable,
            ),
            s(),
            inflow_body,
            SEARCH,
            "Inflow channel of a referrer URL: direct (empty or null), naver, google, daum, social (Facebook, X/Twitter, t.co, Instagram, YouTube, KakaoStory, ...), internal (the optional own host), or other.",
            "inflow_channel(referrer [, own_host])",
            "SELECT inflow_channel('https://m.search.naver.com/search.naver?query=x') -- 'naver'",
        ),
        udf(
            "referrer_query",
            string1(),
            s(),
            |a| map_str(&a[0], referrer_query),
            SEARCH,
            "The search keywords carried in a search-engine referrer (query=, q=, p=, wd=), URL-decoded; null when none.",
            "referrer_query(referrer)",
            "SELECT referrer_query('https://www.google.com/search?q=%EB%82%A0%EC%94%A8') -- '날씨'",
        ),
        udf(
            "url_host",
            string1(),
            s(),
            |a| map_str(&a[0], url_host),
            SEARCH,
            "Host of a URL, lower-cased, without a leading www.; null when the URL has none.",
            "url_host(url)",
            "SELECT url_host('https://WWW.Naver.com/a?b=c') -- 'naver.com'",
        ),
        udf(
            "device_type",
            string1(),
            s(),
            |a| map_str(&a[0], |v| Some(device_type(v).to_string())),
            SEARCH,
            "Device class of a user agent: mobile, tablet, pc or bot.",
            "device_type(user_agent)",
            "SELECT device_type('Mozilla/5.0 (iPhone; CPU iPhone OS 13_1 like Mac OS X)') -- 'mobile'",
        ),
        udf(
            "ua_browser",
            string1(),
            s(),
            |a| map_str(&a[0], ua_browser),
            SEARCH,
            "Browser family of a user agent by the uap-core rules (null when unknown).",
            "ua_browser(user_agent)",
            "SELECT ua_browser('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.90 Safari/537.36') -- 'Chrome'",
        ),
        udf(
            "ua_os",
            string1(),
            s(),
            |a| map_str(&a[0], ua_os),
            SEARCH,
            "Operating system family of a user agent by the uap-core rules (null when unknown).",
            "ua_os(user_agent)",
            "SELECT ua_os('Mozilla/5.0 (Linux; Android 9; SM-G960N) AppleWebKit/537.36') -- 'Android'",
        ),
        udf(
            "age_band",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Int32),
            age_band_body,
            SEARCH,
            "10-year age band (0, 10, 20, ...) of a birth year at a given year; null for nulls and impossible years.",
            "age_band(birth_year, at_year)",
            "SELECT age_band(1990, 2019) -- 20",
        ),
        udf(
            "ctr",
            Signature::one_of(vec![TypeSignature::Any(2)], Volatility::Immutable),
            Returns::Fixed(DataType::Float64),
            ctr_body,
            SEARCH,
            "Click-through rate: clicks / impressions as a double; null when impressions is 0 or null.",
            "ctr(clicks, impressions)",
            "SELECT ctr(3, 40) -- 0.075",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_queries() {
        assert_eq!(inflow_channel(None, None), "direct");
        assert_eq!(inflow_channel(Some(""), None), "direct");
        assert_eq!(
            inflow_channel(Some("https://m.blog.naver.com/x"), None),
            "naver"
        );
        assert_eq!(
            inflow_channel(Some("https://cafe.naver.com/x"), None),
            "naver"
        );
        assert_eq!(
            inflow_channel(Some("https://www.google.co.kr/search?q=a"), None),
            "google"
        );
        assert_eq!(
            inflow_channel(Some("https://m.search.daum.net/search?q=a"), None),
            "daum"
        );
        assert_eq!(inflow_channel(Some("https://t.co/abc"), None), "social");
        assert_eq!(
            inflow_channel(Some("https://shop.example.com/a"), Some("example.com")),
            "internal"
        );
        assert_eq!(inflow_channel(Some("not a url at all"), None), "other");
        assert_eq!(
            referrer_query(
                "https://search.naver.com/search.naver?where=nexearch&query=%EB%82%A0%EC%94%A8"
            )
            .as_deref(),
            Some("날씨")
        );
        assert_eq!(
            referrer_query("https://www.google.com/search?q=a+b").as_deref(),
            Some("a b")
        );
        assert_eq!(referrer_query("https://blog.example.com/post/1"), None);
        assert_eq!(normalize_query("  ＡＢＣ   날씨 "), "abc 날씨");
        assert_eq!(
            url_host("https://WWW.Naver.com/a").as_deref(),
            Some("naver.com")
        );
    }

    #[test]
    fn user_agents() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 13_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_type(iphone), "mobile");
        assert_eq!(
            device_type("Mozilla/5.0 (iPad; CPU OS 13_1 like Mac OS X)"),
            "tablet"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            "bot"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            "pc"
        );
        assert_eq!(ua_browser(iphone).as_deref(), Some("Mobile Safari"));
        assert_eq!(ua_os(iphone).as_deref(), Some("iOS"));
    }
}
