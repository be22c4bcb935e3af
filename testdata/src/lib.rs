//! Deterministic sample search logs following `shared/design/BENCHMARK.md`: raw JSON lines laid
//! out `<sender_ip>/<YYYYMMDD>.jsonl`, a user profile file, and the DDL of both tables. The same
//! configuration always produces byte-identical files, so tests and benchmarks can compare runs.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// DDL of the log table (bucketed like the benchmark).
pub const STREAM_LOG_DDL: &str = "CREATE TABLE IF NOT EXISTS korea_naver_log.stream_log (
  log_time TIMESTAMP COMMENT 'log creation time (UTC); part of the unique key',
  sender_ip STRING COMMENT 'collector that shipped the line; part of the unique key',
  line_no BIGINT COMMENT 'line position in the sender file; part of the unique key',
  log_key STRING COMMENT 'unique key: log_time ns, sender_ip, line_no',
  user_id STRING COMMENT 'user; bucket column',
  session_id STRING,
  query STRING COMMENT 'search query as typed',
  section STRING COMMENT 'web, news, image, blog, kin, shopping, video, map',
  event STRING COMMENT 'impression or click',
  doc_id STRING COMMENT 'exposed document',
  rank INT COMMENT 'position on the result page',
  referrer STRING COMMENT 'referrer URL, empty when direct',
  user_agent STRING,
  client_ip STRING COMMENT 'client address (sensitive)'
)
COMMENT 'search result events'
PARTITIONED BY (dt STRING COMMENT 'YYYY-MM-DD of log_time')
CLUSTERED BY (user_id) SORTED BY (user_id) INTO 16 BUCKETS
STORED AS PARQUET
TBLPROPERTIES ('sensitive_columns'='client_ip')";

/// DDL of the profile table (bucketed the same way).
pub const USER_PROFILE_DDL: &str = "CREATE TABLE IF NOT EXISTS korea_naver_log.user_profile (
  user_id STRING COMMENT 'user; bucket column',
  birth_year INT COMMENT 'sensitive',
  gender STRING COMMENT 'M or F (sensitive)',
  region STRING
)
COMMENT 'user profiles'
CLUSTERED BY (user_id) SORTED BY (user_id) INTO 16 BUCKETS
STORED AS PARQUET
TBLPROPERTIES ('sensitive_columns'='birth_year,gender')";

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub start: NaiveDate,
    pub days: u32,
    pub rows_per_day: u64,
    pub users: u32,
    pub queries: u32,
    pub senders: u32,
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            start: NaiveDate::from_ymd_opt(2019, 10, 1).expect("valid date"),
            days: 30,
            rows_per_day: 1_000_000,
            users: 200_000,
            queries: 5_000,
            senders: 16,
            seed: 20191001,
        }
    }
}

const SECTIONS: [&str; 8] = [
    "web", "news", "image", "blog", "kin", "shopping", "video", "map",
];
const SECTION_WEIGHTS: [u32; 8] = [35, 15, 12, 12, 8, 8, 6, 4];
const KO_WORDS: [&str; 48] = [
    "날씨",
    "맛집",
    "뉴스",
    "환율",
    "주식",
    "로또",
    "영화",
    "드라마",
    "지도",
    "번역",
    "쇼핑",
    "여행",
    "호텔",
    "항공권",
    "부동산",
    "코로나",
    "축구",
    "야구",
    "음악",
    "게임",
    "요리",
    "레시피",
    "카페",
    "서울",
    "부산",
    "제주도",
    "캠핑",
    "자동차",
    "노트북",
    "휴대폰",
    "운동화",
    "패딩",
    "다이어트",
    "병원",
    "약국",
    "학원",
    "대학교",
    "채용",
    "알바",
    "전세",
    "월세",
    "대출",
    "보험",
    "택배",
    "배송",
    "쿠폰",
    "할인",
    "이벤트",
];
const EN_WORDS: [&str; 16] = [
    "iphone",
    "galaxy",
    "netflix",
    "youtube",
    "bts",
    "kpop",
    "python",
    "java",
    "nike",
    "adidas",
    "ikea",
    "starbucks",
    "macbook",
    "samsung",
    "lg",
    "hyundai",
];
const USER_AGENTS: [&str; 8] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 13_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 9; SM-G960N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.92 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.90 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
    "Mozilla/5.0 (iPad; CPU OS 13_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:69.0) Gecko/20100101 Firefox/69.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 9; SM-T720) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.92 Safari/537.36",
];
const REGIONS: [&str; 8] = [
    "서울", "부산", "인천", "대구", "대전", "광주", "경기", "제주",
];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D049BB133111EB);
    x ^ (x >> 31)
}

/// User id of user `i`: `u` + 12 hex digits.
pub fn user_id(i: u32) -> String {
    format!("u{:012x}", splitmix(i as u64) & 0xFFFF_FFFF_FFFF)
}

/// Distinct query text `i` (query 0 is "날씨", the most popular).
pub fn query_text(i: u32) -> String {
    let ko = KO_WORDS.len() as u32;
    if i < ko {
        return KO_WORDS[i as usize].to_string();
    }
    let j = i - ko;
    if j % 7 == 3 {
        let e = EN_WORDS[(j / 7) as usize % EN_WORDS.len()];
        let k = KO_WORDS[(j / 7 / EN_WORDS.len() as u32) as usize % KO_WORDS.len()];
        return format!("{e} {k}");
    }
    let a = KO_WORDS[(j % ko) as usize];
    let b = KO_WORDS[((j / ko) % ko) as usize];
    let n = j / (ko * ko);
    if n == 0 {
        format!("{a} {b}")
    } else {
        format!("{a} {b} {n}")
    }
}

/// Samples 0..n with Zipf(s) popularity via a precomputed CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: u32, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        let total = acc;
        for c in cdf.iter_mut() {
            *c /= total;
        }
        Zipf { cdf }
    }
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let u: f64 = rng.random();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1) as u32
    }
}

fn json_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Sender IP of sender `i`.
pub fn sender_ip(i: u32) -> String {
    format!("10.10.{}.{}", i / 250, 1 + i % 250)
}

/// Statistics of what was generated.
#[derive(Debug, Default, Clone)]
pub struct GenStats {
    pub lines: u64,
    pub bytes: u64,
    pub files: Vec<PathBuf>,
}

/// Writes raw logs as `<dir>/<sender_ip>/<YYYYMMDD>.jsonl`. Lines of a day are spread over the
/// senders round-robin, in time order.
pub fn write_raw_logs(cfg: &GenConfig, dir: &Path) -> std::io::Result<GenStats> {
    let users = Zipf::new(cfg.users, 1.05);
    let queries = Zipf::new(cfg.queries, 1.0);
    let sec_total: u32 = SECTION_WEIGHTS.iter().sum();
    let mut stats = GenStats::default();
    for d in 0..cfg.days {
        let day = cfg.start + Duration::days(d as i64);
        let day_start_ns = day
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_nanos_opt()
            .expect("in range");
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ ((d as u64) << 32));
        let mut writers: Vec<BufWriter<std::fs::File>> = Vec::new();
        for s in 0..cfg.senders {
            let sdir = dir.join(sender_ip(s));
            std::fs::create_dir_all(&sdir)?;
            let path = sdir.join(format!("{}.jsonl", day.format("%Y%m%d")));
            stats.files.push(path.clone());
            writers.push(BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(path)?,
            ));
        }
        let step = 86_400_000_000_000i64 / cfg.rows_per_day.max(1) as i64;
        let mut line = String::with_capacity(512);
        for i in 0..cfg.rows_per_day {
            let t = day_start_ns + i as i64 * step + rng.random_range(0..step.max(1));
            let u = users.sample(&mut rng);
            let q = queries.sample(&mut rng);
            let mut query = query_text(q);
            match rng.random_range(0..40) {
                0 => query = format!(" {query}"),
                1 => query = query.replacen(' ', "  ", 1),
                2 => query = query.to_uppercase(),
                _ => {}
            }
            let mut w = rng.random_range(0..sec_total);
            let mut section = SECTIONS[0];
            for (k, sw) in SECTION_WEIGHTS.iter().enumerate() {
                if w < *sw {
                    section = SECTIONS[k];
                    break;
                }
                w -= sw;
            }
            let rank: u32 = (1 + (rng.random::<f64>().powi(3) * 50.0) as u32).min(50);
            let event = if rng.random_range(0..100) < 12 {
                "click"
            } else {
                "impression"
            };
            let doc = splitmix(((q as u64) << 8) ^ rank as u64 ^ ((section.len() as u64) << 20))
                % 100_000;
            let referrer = match rng.random_range(0..100) {
                0..=29 => String::new(),
                30..=64 => format!(
                    "https://search.naver.com/search.naver?where=nexearch&query={}",
                    url_encode(&query_text(q))
                ),
                65..=74 => format!(
                    "https://www.google.com/search?q={}",
                    url_encode(&query_text(q))
                ),
                75..=82 => format!(
                    "https://search.daum.net/search?w=tot&q={}",
                    url_encode(&query_text(q))
                ),
                83..=85 => "https://www.facebook.com/".to_string(),
                86..=87 => format!("https://t.co/{:x}", splitmix(i)),
                88..=89 => "https://www.youtube.com/watch?v=abc".to_string(),
                _ => format!("https://blog.example.com/post/{}", i % 1000),
            };
            let ua = USER_AGENTS[(splitmix(u as u64) % USER_AGENTS.len() as u64) as usize];
            let client = splitmix(u as u64 ^ 0xABCDEF);
            let secs = t.div_euclid(1_000_000_000);
            let nanos = t.rem_euclid(1_000_000_000) as u32;
            let ts = chrono::DateTime::from_timestamp(secs, nanos).expect("in range");
            line.clear();
            line.push_str("{\"log_time\":\"");
            let _ = write!(line, "{}", ts.format("%Y-%m-%dT%H:%M:%S%.9fZ"));
            let _ = write!(
                line,
                "\",\"user_id\":\"{}\",\"session_id\":\"s{:x}-{}\",\"query\":\"",
                user_id(u),
                u,
                d * 4 + (i % 4) as u32
            );
            json_escape(&query, &mut line);
            let _ = write!(
                line,
                "\",\"section\":\"{section}\",\"event\":\"{event}\",\"doc_id\":\"d{doc:06}\",\"rank\":{rank},\"referrer\":\""
            );
            json_escape(&referrer, &mut line);
            line.push_str("\",\"user_agent\":\"");
            json_escape(ua, &mut line);
            let _ = writeln!(
                line,
                "\",\"client_ip\":\"211.{}.{}.{}\"}}",
                client & 0xFF,
                (client >> 8) & 0xFF,
                (client >> 16) & 0xFF
            );
            let s = (i % cfg.senders as u64) as usize;
            writers[s].write_all(line.as_bytes())?;
            stats.lines += 1;
            stats.bytes += line.len() as u64;
        }
        for mut w in writers {
            w.flush()?;
        }
    }
    Ok(stats)
}

/// Writes the user profile table as JSON lines (one file).
pub fn write_profiles(cfg: &GenConfig, path: &Path) -> std::io::Result<u64> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x5EED);
    for i in 0..cfg.users {
        let birth: u32 = rng.random_range(1950..2010);
        let gender = if rng.random_bool(0.5) { "M" } else { "F" };
        let region = REGIONS[rng.random_range(0..REGIONS.len())];
        writeln!(
            w,
            "{{\"user_id\":\"{}\",\"birth_year\":{birth},\"gender\":\"{gender}\",\"region\":\"{region}\"}}",
            user_id(i)
        )?;
    }
    w.flush()?;
    Ok(cfg.users as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_well_formed() {
        let cfg = GenConfig {
            days: 1,
            rows_per_day: 200,
            users: 50,
            queries: 100,
            senders: 2,
            ..Default::default()
        };
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        let sa = write_raw_logs(&cfg, &a).unwrap();
        write_raw_logs(&cfg, &b).unwrap();
        assert_eq!(sa.lines, 200);
        assert_eq!(sa.files.len(), 2);
        let fa = std::fs::read_to_string(&sa.files[0]).unwrap();
        let fb = std::fs::read_to_string(b.join(sender_ip(0)).join("20191001.jsonl")).unwrap();
        assert_eq!(fa, fb);
        assert_eq!(fa.lines().count(), 100);
        assert!(
            fa.lines()
                .all(|l| l.starts_with("{\"log_time\":\"2019-10-01T") && l.ends_with("\"}"))
        );
        assert_eq!(query_text(0), "날씨");
        let _ = std::fs::remove_dir_all(a);
        let _ = std::fs::remove_dir_all(b);
    }

    fn tempfile_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cuve-testdata-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
