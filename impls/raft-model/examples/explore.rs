//! Opens stateright's Explorer on the Raft model: a web page to walk the state space
//! step by step and to see the properties' discoveries as sequence diagrams.
//!
//! cargo run --release -p raft-model --example explore -- [--bounds two-terms] [--bug forget-vote]

use clap::{Parser, ValueEnum};
use raft::Bug;
use raft_model::RaftModel;
use stateright::Model;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, ValueEnum)]
enum Bounds {
    OneTerm,
    TwoTerms,
    Wide,
}

#[derive(Parser)]
#[command(about = "Serve stateright's Explorer on the Raft model")]
struct Args {
    #[arg(long, value_enum, default_value = "one-term")]
    bounds: Bounds,
    /// A known-bad variant of the core: count-commit, forget-vote, one-step-backup.
    #[arg(long)]
    bug: Option<String>,
    #[arg(long, default_value = "localhost:3000")]
    address: String,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let bug =
        match args.bug.as_deref() {
            None => None,
            Some(name) => Some(Bug::from_name(name).ok_or_else(|| {
                format!("unknown --bug {name:?}: one of {}", Bug::NAMES.join(", "))
            })?),
        };
    let model = match args.bounds {
        Bounds::OneTerm => RaftModel::one_term(),
        Bounds::TwoTerms => RaftModel::two_terms(),
        Bounds::Wide => RaftModel::wide(),
    }
    .with_bug(bug);
    println!("Explorer on http://{} ({model:?})", args.address);
    model.into_model().checker().serve(&args.address);
    Ok(())
}
