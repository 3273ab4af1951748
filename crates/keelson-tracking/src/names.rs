//! Readable generated run names, like MLflow's `adjective-noun-123`.

const ADJECTIVES: &[&str] = &[
    "able", "bold", "brave", "bright", "calm", "clever", "crisp", "dapper", "eager", "fair", "gentle", "glad",
    "honest", "keen", "kind", "lively", "lucid", "merry", "neat", "nimble", "polite", "quick", "quiet", "rare",
    "sharp", "silent", "smart", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
];
const NOUNS: &[&str] = &[
    "ant", "bass", "bear", "crab", "crane", "deer", "dove", "eel", "finch", "fox", "frog", "gnu", "hare", "hawk",
    "heron", "ibis", "koala", "lark", "lynx", "mole", "moth", "newt", "owl", "panda", "perch", "quail", "ram", "seal",
    "shrew", "snail", "squid", "stork", "swan", "toad", "trout", "wolf", "wren", "yak",
];

pub fn generate_run_name() -> String {
    let adjective = ADJECTIVES[fastrand::usize(..ADJECTIVES.len())];
    let noun = NOUNS[fastrand::usize(..NOUNS.len())];
    format!("{adjective}-{noun}-{}", fastrand::u32(0..1000))
}
