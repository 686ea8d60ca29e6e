//! Known-bad variants, switched on with `GOSSIP_BUG=<name>`, that prove the suite
//! bites. They are not features: each one breaks the contract on purpose.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// `no-anti-entropy`: no periodic status exchange, so a rumor lost while nobody
    /// mongers it is never repaired.
    NoAntiEntropy,
    /// `no-order`: a rumor is delivered as soon as it arrives, even past a gap in its
    /// origin's sequence.
    NoOrder,
    /// `flood`: every message goes to every neighbour, again every period, forever.
    Flood,
}

impl Bug {
    pub const NAMES: [&'static str; 3] = ["no-anti-entropy", "no-order", "flood"];

    pub fn from_name(name: &str) -> Option<Bug> {
        match name {
            "no-anti-entropy" => Some(Bug::NoAntiEntropy),
            "no-order" => Some(Bug::NoOrder),
            "flood" => Some(Bug::Flood),
            _ => None,
        }
    }

    /// `GOSSIP_BUG`, or an error naming the known variants.
    pub fn from_env() -> Result<Option<Bug>, String> {
        match std::env::var("GOSSIP_BUG") {
            Ok(name) if !name.is_empty() => Bug::from_name(&name).map(Some).ok_or_else(|| {
                format!(
                    "unknown GOSSIP_BUG={name:?}; known: {}",
                    Bug::NAMES.join(", ")
                )
            }),
            _ => Ok(None),
        }
    }
}
