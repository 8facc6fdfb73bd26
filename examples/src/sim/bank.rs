//! The bank scenario (placeholder until the full scenario lands).

use tina_sim::cli::ScenarioOptions;
use tina_sim::{Report, SimConfig};

/// Runs the bank scenario.
pub fn run(config: &SimConfig, options: &ScenarioOptions) -> Report {
    super::dispatcher::run(config, options)
}
