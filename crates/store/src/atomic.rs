//! Writes that a crash cannot tear: a temp file in the same directory, fsync, rename over the
//! target, fsync of the directory. Readers see the old content or the new, never a mix.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

fn temp_name(path: &Path) -> io::Result<std::path::PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok(path.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>())))
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_name(path)?;
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        fsync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

/// None when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes `.<name>.tmp-*` files a crash left in `dir`.
pub fn remove_stale_temps(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_leave_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        write_json_atomic(&p, &vec![1, 2]).expect("write");
        write_json_atomic(&p, &vec![3]).expect("write");
        assert_eq!(read_json::<Vec<i32>>(&p).expect("read"), Some(vec![3]));
        assert_eq!(
            read_json::<Vec<i32>>(&dir.path().join("none")).expect("read"),
            None
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        std::fs::write(dir.path().join(".state.json.tmp-1234"), "x").expect("write");
        remove_stale_temps(dir.path()).expect("clean");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
