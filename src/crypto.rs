//! Streaming age encryption and decryption, with SHA-256 of both plaintext and ciphertext.
//!
//! Encryption runs as a small pipeline: the calling thread reads and encrypts while two helper
//! threads hash the plaintext and the ciphertext, so hashing costs little wall time. Every
//! buffer is fixed-size and the channels are bounded: memory does not grow with the input.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sha2::{Digest, Sha256};

use crate::media::SNIFF_LEN;

const CHUNK: usize = 256 * 1024;
/// Chunks in flight per hasher: bounds memory at about 2 × DEPTH × CHUNK.
const DEPTH: usize = 8;

/// What sealing a stream learned about it.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub size: u64,
    pub sha256: [u8; 32],
    /// CRC-32 of the plaintext, for zip entry headers (see `manifest::Document::crc32`).
    pub crc32: u32,
    pub cipher_size: u64,
    /// BLAKE3 of the ciphertext: what `verify` and keyless checks compare objects against.
    /// BLAKE3 rather than SHA-256 because it runs several times faster, so hashing the
    /// ciphertext costs almost nothing next to encrypting it.
    pub cipher_blake3: [u8; 32],
    /// The first bytes of the plaintext, for media-type detection.
    pub head: Vec<u8>,
}

/// A bounded channel to a hashing thread, with buffers handed back for reuse so that a long
/// stream neither allocates per chunk nor holds more than DEPTH + 2 buffers.
struct Pipe {
    tx: SyncSender<Vec<u8>>,
    back: Receiver<Vec<u8>>,
}

impl Pipe {
    fn buffer(&self) -> Vec<u8> {
        let mut b = self.recycled();
        b.clear();
        b
    }

    fn recycled(&self) -> Vec<u8> {
        self.back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK))
    }

    fn send(&self, buf: Vec<u8>) {
        // The receiver only goes away if its thread panicked; joining it reports that.
        let _ = self.tx.send(buf);
    }
}

fn pipe<'s, T: Send + 's>(
    s: &'s std::thread::Scope<'s, '_>,
    mut state: T,
    update: fn(&mut T, &[u8]),
) -> (Pipe, std::thread::ScopedJoinHandle<'s, T>) {
    let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
    let (back_tx, back) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let handle = s.spawn(move || {
        for buf in rx {
            update(&mut state, &buf);
            let _ = back_tx.try_send(buf);
        }
        state
    });
    (Pipe { tx, back }, handle)
}

/// Forwards ciphertext to the file and, in CHUNK-sized batches, to the ciphertext hasher.
struct TeeWriter<W> {
    inner: W,
    pipe: Pipe,
    pending: Vec<u8>,
    written: u64,
}

impl<W: Write> Write for TeeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= CHUNK {
            let full = std::mem::replace(&mut self.pending, self.pipe.buffer());
            self.pipe.send(full);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts `input` to `recipients` into `output`, hashing the plaintext (SHA-256) and the
/// ciphertext (BLAKE3) on helper threads, with reading on a thread of its own so that the
/// encrypting thread only encrypts and writes. `progress` gets the plaintext bytes read so far.
pub fn seal<R: Read + Send, W: Write + Send>(
    mut input: R,
    recipients: &[age::x25519::Recipient],
    output: W,
    progress: &dyn Fn(u64),
) -> io::Result<(Sealed, W)> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(io::Error::other)?;
    std::thread::scope(|s| {
        let (plain, ph) = pipe(s, (Sha256::new(), crc32fast::Hasher::new()), |h, b| {
            h.0.update(b);
            h.1.update(b);
        });
        let (cipher, ch) = pipe(s, blake3::Hasher::new(), |h, b| {
            h.update(b);
        });
        let tee = TeeWriter {
            inner: output,
            pending: cipher.buffer(),
            pipe: cipher,
            written: 0,
        };
        let mut w = enc.wrap_output(tee)?;
        let mut size = 0u64;
        let mut head = Vec::new();
        // The reader fills buffers the plaintext hasher hands back once it is done with them.
        let Pipe { tx: plain_tx, back } = plain;
        let plain = Pipe {
            tx: plain_tx,
            back: sync_channel(0).1,
        };
        let (read_tx, read_rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
        s.spawn(move || {
            loop {
                let mut buf = back
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                buf.resize(CHUNK, 0);
                match read_full(&mut input, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if read_tx.send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = read_tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        for msg in read_rx {
            let buf = msg?;
            let n = buf.len();
            if head.len() < SNIFF_LEN {
                let take = (SNIFF_LEN - head.len()).min(n);
                head.extend_from_slice(&buf[..take]);
            }
            w.write_all(&buf)?;
            size += n as u64;
            plain.send(buf);
            progress(size);
        }
        drop(plain);
        let tee = w.finish()?;
        let TeeWriter {
            inner,
            pipe,
            pending,
            written,
        } = tee;
        pipe.send(pending);
        drop(pipe);
        let lost = || io::Error::other("a hashing thread failed");
        let (sha, crc) = ph.join().map_err(|_| lost())?;
        let b3 = ch.join().map_err(|_| lost())?;
        Ok((
            Sealed {
                size,
                sha256: sha.finalize().into(),
                crc32: crc.finalize(),
                cipher_size: written,
                cipher_blake3: *b3.finalize().as_bytes(),
                head,
            },
            inner,
        ))
    })
}

/// A writer that SHA-256s everything passing through it: the plaintext `cat` and `export`
/// release (checked against the manifest) and the bundle `grant` writes (recorded in the log).
pub struct HashingWriter<W> {
    pub inner: W,
    hash: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Sha256::new(),
        }
    }

    /// The writer back, and the hex SHA-256 of all that went through.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hash.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fills `buf` as far as the input allows, so chunks stay large even from pipes.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Below this size a file is sealed on the calling thread: starting the pipeline's three
/// threads costs more than hashing a few kilobytes inline.
pub const SMALL: u64 = 1 << 20;

/// Like `seal` for an input already in memory (a small file): hashes inline, no threads.
pub fn seal_small<W: Write>(
    plaintext: &[u8],
    recipients: &[age::x25519::Recipient],
    output: W,
) -> io::Result<(Sealed, W)> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(io::Error::other)?;
    let mut tee = HashTee {
        inner: output,
        hash: blake3::Hasher::new(),
        written: 0,
    };
    let mut w = enc.wrap_output(&mut tee)?;
    w.write_all(plaintext)?;
    w.finish()?;
    let HashTee {
        inner,
        hash,
        written,
    } = tee;
    Ok((
        Sealed {
            size: plaintext.len() as u64,
            sha256: Sha256::digest(plaintext).into(),
            crc32: crc32fast::hash(plaintext),
            cipher_size: written,
            cipher_blake3: *hash.finalize().as_bytes(),
            head: plaintext[..plaintext.len().min(SNIFF_LEN)].to_vec(),
        },
        inner,
    ))
}

/// Hashes (BLAKE3) and counts what passes through to `inner`.
struct HashTee<W> {
    inner: W,
    hash: blake3::Hasher,
    written: u64,
}

impl<W: Write> Write for HashTee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts a small in-memory value (manifest, config secrets).
pub fn seal_bytes(plaintext: &[u8], recipients: &[age::x25519::Recipient]) -> io::Result<Vec<u8>> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(plaintext.len() + 512);
    let mut w = enc.wrap_output(&mut out)?;
    w.write_all(plaintext)?;
    w.finish()?;
    Ok(out)
}

/// Why an age file did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("not an age file, or its header is damaged")]
    Header,
    #[error("none of the given keys can open it")]
    NoMatchingKey,
    #[error("its content is damaged or truncated")]
    Damaged,
    #[error("{0}")]
    Io(io::Error),
}

impl From<age::DecryptError> for OpenError {
    fn from(e: age::DecryptError) -> Self {
        match e {
            age::DecryptError::NoMatchingKeys => OpenError::NoMatchingKey,
            age::DecryptError::Io(e) => OpenError::Io(e),
            age::DecryptError::InvalidHeader
            | age::DecryptError::UnknownFormat
            | age::DecryptError::InvalidMac => OpenError::Header,
            _ => OpenError::Damaged,
        }
    }
}

/// Opens an age stream for reading; each 64 KiB chunk is authenticated before it is returned,
/// and truncation shows up as an error at the end.
pub fn open<'a, R: BufRead + 'a>(
    input: R,
    identities: impl Iterator<Item = &'a dyn age::Identity>,
) -> Result<impl Read + 'a, OpenError> {
    let dec = age::Decryptor::new_buffered(input)?;
    Ok(dec.decrypt(identities)?)
}

/// The largest age file whose plaintext is at most `plain` bytes: 16 bytes of tag per 64 KiB
/// chunk, plus room for the header. Lets readers refuse an oversized file before decrypting.
pub fn max_sealed_len(plain: u64) -> u64 {
    plain + (plain / (64 * 1024) + 1) * 16 + 64 * 1024
}

/// Decrypts a whole small file, refusing plaintexts above `limit` bytes.
pub fn open_bytes<'a>(
    input: &'a [u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    limit: u64,
) -> Result<Vec<u8>, OpenError> {
    let r = open(input, identities)?;
    // Sized up front (a plaintext is never longer than its ciphertext) so the buffer never
    // reallocates, which would leave copies of secrets in freed memory.
    let mut out = Vec::with_capacity(input.len());
    r.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
                OpenError::Damaged
            } else {
                OpenError::Io(e)
            }
        })?;
    if out.len() as u64 > limit {
        return Err(OpenError::Damaged);
    }
    Ok(out)
}

/// Copies a decrypted stream to `out`, mapping age's stream errors to `Damaged`.
pub fn copy_plain<R: Read, W: Write>(
    mut r: R,
    out: &mut W,
    progress: &dyn Fn(u64),
) -> Result<u64, OpenError> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::InvalidData
                    || e.kind() == io::ErrorKind::UnexpectedEof =>
            {
                return Err(OpenError::Damaged);
            }
            Err(e) => return Err(OpenError::Io(e)),
        };
        out.write_all(&buf[..n]).map_err(OpenError::Io)?;
        total += n as u64;
        progress(total);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hashes_both_sides() {
        let id = age::x25519::Identity::generate();
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let (sealed, out) = seal(&data[..], &[id.to_public()], Vec::new(), &|_| {}).unwrap();
        assert_eq!(sealed.size, data.len() as u64);
        assert_eq!(sealed.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(sealed.cipher_size, out.len() as u64);
        assert_eq!(sealed.cipher_blake3, *blake3::hash(&out).as_bytes());
        assert_eq!(sealed.head.len(), SNIFF_LEN);
        let back = open_bytes(&out, std::iter::once(&id as &dyn age::Identity), 1 << 30).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn truncated_ciphertext_is_damaged() {
        let id = age::x25519::Identity::generate();
        let data = vec![7u8; 200_000];
        let (_, out) = seal(&data[..], &[id.to_public()], Vec::new(), &|_| {}).unwrap();
        let cut = &out[..out.len() - 100];
        let e = open_bytes(cut, std::iter::once(&id as &dyn age::Identity), 1 << 30).unwrap_err();
        assert!(matches!(e, OpenError::Damaged), "{e:?}");
    }

    #[test]
    fn another_key_does_not_match() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let out = seal_bytes(b"x", &[id.to_public()]).unwrap();
        let e = open_bytes(&out, std::iter::once(&other as &dyn age::Identity), 10).unwrap_err();
        assert!(matches!(e, OpenError::NoMatchingKey), "{e:?}");
    }
}
