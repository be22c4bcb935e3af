//! Warnings from the engine (e.g. a bucketed table with a file that has no bucket id) go to
//! stderr; `CUVE_LOG=info|debug` shows more, with Ballista's own messages (scheduler, executor
//! and cluster client) too.

struct StderrLogger {
    level: log::LevelFilter,
    /// Ballista's messages as well as Cuve's (when `CUVE_LOG` asks for more than warnings).
    ballista: bool,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let target = metadata.target();
        metadata.level() <= self.level
            && (target.starts_with("cuve") || (self.ballista && target.starts_with("ballista")))
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "{}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            );
        }
    }
    fn flush(&self) {}
}

/// Installs the logger (once).
pub fn init() {
    let level = match std::env::var("CUVE_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        Ok("error") => log::LevelFilter::Error,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Warn,
    };
    static LOGGER: std::sync::OnceLock<StderrLogger> = std::sync::OnceLock::new();
    let ballista = level > log::LevelFilter::Warn;
    if log::set_logger(LOGGER.get_or_init(|| StderrLogger { level, ballista })).is_ok() {
        log::set_max_level(level);
    }
}
