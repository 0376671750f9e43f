//! Realistic chat text for the seeded benches: words drawn from a fixed
//! vocabulary with a Zipf-like skew (a few words in most messages, most
//! words rare), plus names, numbers and a sprinkling of rare words, so that
//! search has common, medium and rare terms to find.

use rand::{Rng, RngCore};

/// Common words first: the skew picks early ones most often.
const COMMON: &[&str] = &[
    "the",
    "to",
    "i",
    "you",
    "a",
    "and",
    "it",
    "is",
    "in",
    "for",
    "on",
    "we",
    "that",
    "of",
    "be",
    "this",
    "ok",
    "can",
    "will",
    "have",
    "at",
    "with",
    "just",
    "so",
    "do",
    "are",
    "not",
    "me",
    "my",
    "but",
    "what",
    "if",
    "all",
    "get",
    "yes",
    "no",
    "there",
    "was",
    "thanks",
    "good",
    "today",
    "tomorrow",
    "now",
    "time",
    "meeting",
    "call",
    "later",
    "know",
    "think",
    "see",
    "need",
    "let",
    "one",
    "back",
    "work",
    "about",
    "up",
    "out",
    "go",
    "going",
    "new",
    "sure",
    "great",
    "sounds",
    "lunch",
    "coffee",
    "team",
    "release",
    "date",
    "friday",
    "monday",
    "week",
    "plan",
    "update",
    "review",
    "build",
    "test",
    "deploy",
    "server",
    "issue",
    "fix",
    "bug",
    "branch",
    "merge",
    "design",
    "doc",
    "draft",
    "slides",
    "client",
    "budget",
    "invoice",
    "report",
    "numbers",
    "office",
    "home",
    "train",
    "late",
    "early",
    "minutes",
    "hour",
    "tonight",
    "weekend",
    "trip",
    "flight",
    "hotel",
    "dinner",
    "party",
    "birthday",
    "photo",
    "video",
    "link",
    "file",
    "password",
    "account",
    "login",
    "email",
    "phone",
    "address",
    "ticket",
    "question",
    "answer",
    "idea",
    "problem",
    "done",
    "ready",
    "almost",
    "maybe",
    "probably",
    "again",
    "still",
    "really",
    "quick",
    "short",
    "long",
    "morning",
    "afternoon",
    "evening",
    "night",
    "kids",
    "school",
    "doctor",
    "weather",
    "rain",
    "sunny",
    "cold",
    "hot",
    "traffic",
    "parking",
    "car",
    "bike",
    "walk",
    "gym",
    "football",
    "match",
    "game",
    "movie",
    "music",
    "concert",
    "book",
    "shop",
    "groceries",
    "milk",
    "bread",
    "pizza",
    "beer",
    "wine",
    "cake",
];

/// Names, mentioned now and then.
const NAMES: &[&str] = &[
    "Ana", "Bob", "Zoë", "Mateo", "Priya", "Chen", "Olga", "Kwame", "Sofia", "Liam", "Noor",
    "Hiroshi", "Amélie", "Jonas", "Fatima", "Diego", "Ines", "Tomasz", "Aisha", "Emil",
];

/// Rare words: each in a small share of messages (the rare-prefix query).
const RARE: &[&str] = &[
    "kumquat",
    "zeppelin",
    "quasar",
    "marzipan",
    "xylophone",
    "fjord",
    "gazebo",
    "obelisk",
    "tamarind",
    "vortex",
    "walrus",
    "yodel",
    "zircon",
    "juniper",
    "kiwano",
    "lychee",
];

/// One message of 3 to 16 words.
pub fn message(rng: &mut impl RngCore) -> String {
    let n = rng.random_range(3..=16);
    let mut out = String::with_capacity(n * 7);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let roll: f64 = rng.random();
        if roll < 0.04 {
            out.push_str(NAMES[rng.random_range(0..NAMES.len())]);
        } else if roll < 0.045 {
            out.push_str(RARE[rng.random_range(0..RARE.len())]);
        } else if roll < 0.06 {
            out.push_str(&rng.random_range(1..=500).to_string());
        } else {
            // u^2.2 skews towards the common end of the list.
            let u: f64 = rng.random();
            let k = ((u.powf(2.2)) * COMMON.len() as f64) as usize;
            out.push_str(COMMON[k.min(COMMON.len() - 1)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    #[test]
    fn messages_have_words() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let m = super::message(&mut rng);
            let words = m.split(' ').count();
            assert!((3..=16).contains(&words), "{m}");
        }
    }
}
