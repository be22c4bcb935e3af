//! Hangul: initial consonants (초성) for search-as-you-type, full jamo decomposition, and the
//! 2-beolsik keyboard layout in both directions, for queries typed with the wrong input mode
//! (`gksrmf` ↔ `한글`). Hand-written: the rules are a few tables and a small state machine.

const BASE: u32 = 0xAC00;
const LAST: u32 = 0xD7A3;
const CHO: [char; 19] = [
    'ㄱ', 'ㄲ', 'ㄴ', 'ㄷ', 'ㄸ', 'ㄹ', 'ㅁ', 'ㅂ', 'ㅃ', 'ㅅ', 'ㅆ', 'ㅇ', 'ㅈ', 'ㅉ', 'ㅊ', 'ㅋ',
    'ㅌ', 'ㅍ', 'ㅎ',
];
const JUNG: [char; 21] = [
    'ㅏ', 'ㅐ', 'ㅑ', 'ㅒ', 'ㅓ', 'ㅔ', 'ㅕ', 'ㅖ', 'ㅗ', 'ㅘ', 'ㅙ', 'ㅚ', 'ㅛ', 'ㅜ', 'ㅝ', 'ㅞ',
    'ㅟ', 'ㅠ', 'ㅡ', 'ㅢ', 'ㅣ',
];
const JONG: [Option<char>; 28] = [
    None,
    Some('ㄱ'),
    Some('ㄲ'),
    Some('ㄳ'),
    Some('ㄴ'),
    Some('ㄵ'),
    Some('ㄶ'),
    Some('ㄷ'),
    Some('ㄹ'),
    Some('ㄺ'),
    Some('ㄻ'),
    Some('ㄼ'),
    Some('ㄽ'),
    Some('ㄾ'),
    Some('ㄿ'),
    Some('ㅀ'),
    Some('ㅁ'),
    Some('ㅂ'),
    Some('ㅄ'),
    Some('ㅅ'),
    Some('ㅆ'),
    Some('ㅇ'),
    Some('ㅈ'),
    Some('ㅊ'),
    Some('ㅋ'),
    Some('ㅌ'),
    Some('ㅍ'),
    Some('ㅎ'),
];

/// Compound vowels and finals and their parts (in typing order).
const COMPOUND_VOWELS: [(char, char, char); 7] = [
    ('ㅘ', 'ㅗ', 'ㅏ'),
    ('ㅙ', 'ㅗ', 'ㅐ'),
    ('ㅚ', 'ㅗ', 'ㅣ'),
    ('ㅝ', 'ㅜ', 'ㅓ'),
    ('ㅞ', 'ㅜ', 'ㅔ'),
    ('ㅟ', 'ㅜ', 'ㅣ'),
    ('ㅢ', 'ㅡ', 'ㅣ'),
];
const COMPOUND_FINALS: [(char, char, char); 11] = [
    ('ㄳ', 'ㄱ', 'ㅅ'),
    ('ㄵ', 'ㄴ', 'ㅈ'),
    ('ㄶ', 'ㄴ', 'ㅎ'),
    ('ㄺ', 'ㄹ', 'ㄱ'),
    ('ㄻ', 'ㄹ', 'ㅁ'),
    ('ㄼ', 'ㄹ', 'ㅂ'),
    ('ㄽ', 'ㄹ', 'ㅅ'),
    ('ㄾ', 'ㄹ', 'ㅌ'),
    ('ㄿ', 'ㄹ', 'ㅍ'),
    ('ㅀ', 'ㄹ', 'ㅎ'),
    ('ㅄ', 'ㅂ', 'ㅅ'),
];

/// 2-beolsik layout: key → jamo (shifted keys give the double consonants and ㅒ ㅖ).
const KEYS: [(char, char); 33] = [
    ('q', 'ㅂ'),
    ('w', 'ㅈ'),
    ('e', 'ㄷ'),
    ('r', 'ㄱ'),
    ('t', 'ㅅ'),
    ('y', 'ㅛ'),
    ('u', 'ㅕ'),
    ('i', 'ㅑ'),
    ('o', 'ㅐ'),
    ('p', 'ㅔ'),
    ('a', 'ㅁ'),
    ('s', 'ㄴ'),
    ('d', 'ㅇ'),
    ('f', 'ㄹ'),
    ('g', 'ㅎ'),
    ('h', 'ㅗ'),
    ('j', 'ㅓ'),
    ('k', 'ㅏ'),
    ('l', 'ㅣ'),
    ('z', 'ㅋ'),
    ('x', 'ㅌ'),
    ('c', 'ㅊ'),
    ('v', 'ㅍ'),
    ('b', 'ㅠ'),
    ('n', 'ㅜ'),
    ('m', 'ㅡ'),
    ('Q', 'ㅃ'),
    ('W', 'ㅉ'),
    ('E', 'ㄸ'),
    ('R', 'ㄲ'),
    ('T', 'ㅆ'),
    ('O', 'ㅒ'),
    ('P', 'ㅖ'),
];

fn syllable(c: char) -> Option<(usize, usize, usize)> {
    let u = c as u32;
    if !(BASE..=LAST).contains(&u) {
        return None;
    }
    let i = (u - BASE) as usize;
    Some((i / 588, (i % 588) / 28, i % 28))
}

/// Initial consonants: `사과` → `ㅅㄱ`; other characters are kept.
pub fn choseong(s: &str) -> String {
    s.chars()
        .map(|c| syllable(c).map(|(l, _, _)| CHO[l]).unwrap_or(c))
        .collect()
}

/// Full decomposition into compatibility jamo: `한글` → `ㅎㅏㄴㄱㅡㄹ` (compound vowels and
/// finals stay one jamo, e.g. `ㅘ`, `ㄳ`).
pub fn jamo(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for c in s.chars() {
        match syllable(c) {
            Some((l, v, t)) => {
                out.push(CHO[l]);
                out.push(JUNG[v]);
                if let Some(f) = JONG[t] {
                    out.push(f);
                }
            }
            None => out.push(c),
        }
    }
    out
}

fn key_of(j: char) -> Option<char> {
    KEYS.iter().find(|(_, v)| *v == j).map(|(k, _)| *k)
}

fn split_compound(j: char) -> Vec<char> {
    if let Some((_, a, b)) = COMPOUND_VOWELS
        .iter()
        .chain(COMPOUND_FINALS.iter())
        .find(|(c, _, _)| *c == j)
    {
        return vec![*a, *b];
    }
    vec![j]
}

/// The keys typed for Korean text on a 2-beolsik keyboard: `한글` → `gksrmf`.
pub fn ko_to_qwerty(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in jamo(s).chars() {
        let parts = split_compound(c);
        let keys: Option<Vec<char>> = parts.iter().map(|p| key_of(*p)).collect();
        match keys {
            Some(k) => out.extend(k),
            None => out.push(c),
        }
    }
    out
}

fn is_vowel(j: char) -> bool {
    JUNG.contains(&j)
}

fn combine(table: &[(char, char, char)], a: char, b: char) -> Option<char> {
    table
        .iter()
        .find(|(_, x, y)| *x == a && *y == b)
        .map(|(c, _, _)| *c)
}

fn compose(l: char, v: char, t: Option<char>) -> char {
    let li = CHO.iter().position(|c| *c == l).unwrap_or(0) as u32;
    let vi = JUNG.iter().position(|c| *c == v).unwrap_or(0) as u32;
    let ti = JONG.iter().position(|c| *c == t).unwrap_or(0) as u32;
    char::from_u32(BASE + li * 588 + vi * 28 + ti).unwrap_or(v)
}

/// Composes typed jamo into syllables with the 2-beolsik automaton.
#[derive(Default)]
struct Composer {
    out: String,
    cho: Option<char>,
    jung: Option<char>,
    jong: Option<char>,
}

impl Composer {
    fn flush(&mut self) {
        match (self.cho, self.jung) {
            (Some(l), Some(v)) => self.out.push(compose(l, v, self.jong)),
            (Some(l), None) => self.out.push(l),
            (None, Some(v)) => self.out.push(v),
            (None, None) => {}
        }
        if (self.cho.is_none() || self.jung.is_none())
            && let Some(t) = self.jong
        {
            self.out.push(t);
        }
        self.cho = None;
        self.jung = None;
        self.jong = None;
    }

    fn consonant(&mut self, c: char) {
        match (self.cho, self.jung, self.jong) {
            (None, None, _) => self.cho = Some(c),
            (Some(_), None, _) => {
                self.flush();
                self.cho = Some(c);
            }
            (None, Some(_), _) => {
                self.flush();
                self.cho = Some(c);
            }
            (Some(_), Some(_), None) => {
                if JONG.contains(&Some(c)) {
                    self.jong = Some(c);
                } else {
                    self.flush();
                    self.cho = Some(c);
                }
            }
            (Some(_), Some(_), Some(t)) => match combine(&COMPOUND_FINALS, t, c) {
                Some(ct) => self.jong = Some(ct),
                None => {
                    self.flush();
                    self.cho = Some(c);
                }
            },
        }
    }

    fn vowel(&mut self, v: char) {
        match (self.cho, self.jung, self.jong) {
            (Some(_), None, _) => self.jung = Some(v),
            (_, Some(cur), None) => match combine(&COMPOUND_VOWELS, cur, v) {
                Some(cv) => self.jung = Some(cv),
                None => {
                    self.flush();
                    self.jung = Some(v);
                }
            },
            (Some(_), Some(_), Some(t)) => {
                // The final consonant moves to the next syllable.
                let (keep, moved) = match COMPOUND_FINALS.iter().find(|(c, _, _)| *c == t) {
                    Some((_, a, b)) => (Some(*a), *b),
                    None => (None, t),
                };
                self.jong = keep;
                self.flush();
                self.cho = Some(moved);
                self.jung = Some(v);
            }
            _ => {
                self.flush();
                self.jung = Some(v);
            }
        }
    }
}

/// Korean text typed with the keyboard in Latin mode: `gksrmf` → `한글`,
/// `vmfhsxmdpsem` → `프론트엔드`.
pub fn qwerty_to_ko(s: &str) -> String {
    let mut c = Composer::default();
    for ch in s.chars() {
        let j = KEYS
            .iter()
            .find(|(k, _)| *k == ch)
            .or_else(|| KEYS.iter().find(|(k, _)| *k == ch.to_ascii_lowercase()))
            .map(|(_, j)| *j);
        match j {
            Some(j) if is_vowel(j) => c.vowel(j),
            Some(j) => c.consonant(j),
            None => {
                c.flush();
                c.out.push(ch);
            }
        }
    }
    c.flush();
    c.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_and_jamo() {
        assert_eq!(choseong("사과"), "ㅅㄱ");
        assert_eq!(choseong("띄어 쓰기"), "ㄸㅇ ㅆㄱ");
        assert_eq!(choseong("abc 한"), "abc ㅎ");
        assert_eq!(jamo("한글"), "ㅎㅏㄴㄱㅡㄹ");
        assert_eq!(jamo("닭"), "ㄷㅏㄺ");
    }

    #[test]
    fn keyboard_layout_both_ways() {
        assert_eq!(ko_to_qwerty("한글"), "gksrmf");
        assert_eq!(qwerty_to_ko("gksrmf"), "한글");
        assert_eq!(qwerty_to_ko("vmfhsxmdpsem"), "프론트엔드");
        assert_eq!(ko_to_qwerty("프론트엔드"), "vmfhsxmdpsem");
        // shifted keys give double consonants
        assert_eq!(qwerty_to_ko("Tkfkd"), "사랑".replace('사', "싸"));
        assert_eq!(ko_to_qwerty("까치"), "Rkcl");
        // compound vowels and finals round-trip
        for w in ["닭", "과자", "의사", "앉아", "읽다", "뷁", "값"] {
            assert_eq!(qwerty_to_ko(&ko_to_qwerty(w)), w, "{w}");
        }
        // lone jamo and other characters survive
        assert_eq!(qwerty_to_ko("r 1"), "ㄱ 1");
        assert_eq!(qwerty_to_ko("k"), "ㅏ");
    }
}
