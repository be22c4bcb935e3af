//! Ingest sources: a source is (sender IP, name). Files are named by the command line;
//! directories are read as `<sender_ip>/<name>` (or as plain files of one sender with
//! `--sender-ip`); `-` is standard input with `--source NAME`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// One input source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub sender_ip: String,
    /// Name within the sender (file name, or `--source` for stdin).
    pub name: String,
    /// `None` for standard input.
    pub path: Option<PathBuf>,
}

fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

fn visible(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(|n| !n.starts_with('.') && !n.starts_with('_'))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| visible(p))
        .collect();
    v.sort();
    Ok(v)
}

/// Expands command-line inputs into sources.
pub fn expand_inputs(
    inputs: &[String],
    sender_ip: Option<&str>,
    stdin_name: Option<&str>,
) -> Result<Vec<Source>> {
    if let Some(ip) = sender_ip
        && !is_ip(ip)
    {
        return Err(EngineError::invalid(format!(
            "--sender-ip '{ip}' is not an IP address"
        )));
    }
    let mut out = Vec::new();
    for input in inputs {
        if input == "-" {
            let name = stdin_name.ok_or_else(|| {
                EngineError::invalid("reading standard input ('-') needs --source NAME, so a retry can be recognised")
            })?;
            out.push(Source {
                sender_ip: sender_ip.unwrap_or("127.0.0.1").to_string(),
                name: name.to_string(),
                path: None,
            });
            continue;
        }
        let path = PathBuf::from(input);
        let meta = std::fs::metadata(&path).map_err(|e| EngineError::File {
            path: input.clone(),
            message: format!("cannot read input: {e}"),
        })?;
        if meta.is_file() {
            let parent_ip = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .filter(|n| is_ip(n));
            let ip = sender_ip.or(parent_ip).ok_or_else(|| {
                EngineError::invalid(format!(
                    "cannot tell the sender IP of {input}: put it under a <sender_ip>/ directory or pass --sender-ip"
                ))
            })?;
            out.push(file_source(ip, &path));
        } else {
            for entry in sorted_entries(&path)? {
                let name = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string();
                if entry.is_dir() {
                    if !is_ip(&name) {
                        return Err(EngineError::invalid(format!(
                            "directory {} is not named after a sender IP (expected <dir>/<sender_ip>/<file>)",
                            entry.display()
                        )));
                    }
                    for f in sorted_entries(&entry)? {
                        if f.is_file() {
                            out.push(file_source(&name, &f));
                        }
                    }
                } else if entry.is_file() {
                    let ip = sender_ip.ok_or_else(|| {
                        EngineError::invalid(format!(
                            "file {} is not under a <sender_ip>/ directory: pass --sender-ip",
                            entry.display()
                        ))
                    })?;
                    out.push(file_source(ip, &entry));
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert((s.sender_ip.clone(), s.name.clone(), s.path.clone())));
    // A source is (sender IP, name): two different files may not claim the same one.
    let mut by_source: std::collections::HashMap<(String, String), &Option<PathBuf>> =
        Default::default();
    for s in &out {
        if let Some(other) = by_source.insert((s.sender_ip.clone(), s.name.clone()), &s.path) {
            return Err(EngineError::invalid(format!(
                "{} and {} are both source '{}' of sender {}: ingest them under different names or senders",
                other
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "stdin".into()),
                s.path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "stdin".into()),
                s.name,
                s.sender_ip
            )));
        }
    }
    Ok(out)
}

fn file_source(ip: &str, path: &Path) -> Source {
    Source {
        sender_ip: ip.to_string(),
        name: path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string(),
        path: Some(path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_sender_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("10.0.0.1")).unwrap();
        std::fs::write(d.path().join("10.0.0.1/a.jsonl"), "{}\n").unwrap();
        std::fs::write(d.path().join("10.0.0.1/.hidden"), "").unwrap();
        let v = expand_inputs(&[d.path().display().to_string()], None, None).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].sender_ip, "10.0.0.1");
        assert_eq!(v[0].name, "a.jsonl");
        let e = expand_inputs(&["-".into()], None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--source"), "{e}");
        std::fs::write(d.path().join("loose.jsonl"), "{}\n").unwrap();
        let e = expand_inputs(
            &[d.path().join("loose.jsonl").display().to_string()],
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--sender-ip"), "{e}");
    }
}
