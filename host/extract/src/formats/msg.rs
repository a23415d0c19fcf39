//! Outlook messages (`.msg`): a compound file whose MAPI properties are streams named
//! `__substg1.0_IIIITTTT` (property id, type: `001F` UTF-16LE string, `001E` 8-bit
//! string in the message's code page, `0102` binary) plus fixed-size values in
//! `__properties_version1.0`; recipients and attachments are storages of the same shape.
//!
//! Output, like an `.eml`: `Subject:`, `From:` (sender name and SMTP address), `To:`,
//! `Cc:`, `Bcc:` (from the recipient storages, else the display lists), `Date:` (the
//! submit time), a blank line, the plain-text body (else the HTML body's visible text),
//! then an `Attachments:` line naming the attachments. Attachment contents and the
//! compressed RTF body are not read.

use encoding_rs::Encoding;

use crate::detect::Format;
use crate::error::Result;
use crate::formats::html;
use crate::ole::{Ole, u32_at, utf16le};
use crate::text::Sink;

const SUBJECT: u16 = 0x0037;
const CLIENT_SUBMIT_TIME: u16 = 0x0039;
const SENT_REPRESENTING_NAME: u16 = 0x0042;
const SENT_REPRESENTING_EMAIL: u16 = 0x0065;
const SENDER_NAME: u16 = 0x0C1A;
const SENDER_EMAIL: u16 = 0x0C1F;
const RECIPIENT_TYPE: u16 = 0x0C15;
const DISPLAY_BCC: u16 = 0x0E02;
const DISPLAY_CC: u16 = 0x0E03;
const DISPLAY_TO: u16 = 0x0E04;
const BODY: u16 = 0x1000;
const BODY_HTML: u16 = 0x1013;
const DISPLAY_NAME: u16 = 0x3001;
const EMAIL_ADDRESS: u16 = 0x3003;
const ATTACH_FILENAME: u16 = 0x3704;
const ATTACH_LONG_FILENAME: u16 = 0x3707;
const INTERNET_CPID: u16 = 0x3FDE;
const MESSAGE_CODEPAGE: u16 = 0x3FFD;
const SMTP_ADDRESS: u16 = 0x39FE;
const SENDER_SMTP_ADDRESS: u16 = 0x5D01;

/// Fixed-size properties of one storage: (property id, type, 8-byte value).
struct Fixed(Vec<(u16, u16, [u8; 8])>);

impl Fixed {
    /// Parse a `__properties_version1.0` stream whose header is `header` bytes long
    /// (32 for the message, 8 for recipients and attachments).
    fn parse(stream: &[u8], header: usize) -> Fixed {
        Fixed(
            stream
                .get(header..)
                .unwrap_or_default()
                .chunks_exact(16)
                .map(|e| {
                    let tag = u32_at(e, 0).unwrap_or(0);
                    let mut value = [0; 8];
                    value.copy_from_slice(&e[8..16]);
                    ((tag >> 16) as u16, tag as u16, value)
                })
                .collect(),
        )
    }

    fn long(&self, id: u16) -> Option<u32> {
        self.0
            .iter()
            .find(|(i, t, _)| *i == id && *t == 0x0003)
            .and_then(|(_, _, v)| u32_at(v, 0))
    }

    fn time(&self, id: u16) -> Option<u64> {
        self.0
            .iter()
            .find(|(i, t, _)| *i == id && *t == 0x0040)
            .map(|(_, _, v)| u64::from_le_bytes(*v))
    }
}

struct Message<'a, 'b> {
    ole: Ole<'a>,
    sink: &'b mut Sink,
    encoding: &'static Encoding,
}

impl Message<'_, '_> {
    /// A string property of the storage at `dir` ("" for the message itself).
    fn string(&mut self, dir: &str, id: u16) -> Result<Option<String>> {
        let wide = format!("{dir}/__substg1.0_{id:04X}001F");
        if let Some(bytes) = self.ole.read_opt(&wide, self.sink.budget())? {
            return Ok(clean(utf16le(&bytes)));
        }
        let narrow = format!("{dir}/__substg1.0_{id:04X}001E");
        Ok(match self.ole.read_opt(&narrow, self.sink.budget())? {
            Some(bytes) => clean(
                self.encoding
                    .decode_without_bom_handling(&bytes)
                    .0
                    .into_owned(),
            ),
            None => None,
        })
    }

    fn fixed(&mut self, dir: &str, header: usize) -> Result<Fixed> {
        let path = format!("{dir}/__properties_version1.0");
        Ok(self
            .ole
            .read_opt(&path, self.sink.budget())?
            .map_or(Fixed(Vec::new()), |s| Fixed::parse(&s, header)))
    }

    fn header(&mut self, name: &str, value: &str) {
        self.sink.line();
        self.sink.push(name);
        self.sink.push(": ");
        self.sink.push(value);
    }
}

/// A string property without the NUL padding some writers add; `None` when empty.
fn clean(mut s: String) -> Option<String> {
    let end = s.trim_end_matches('\0').len();
    s.truncate(end);
    (!s.trim().is_empty()).then_some(s)
}

fn person(name: Option<String>, address: Option<String>) -> Option<String> {
    match (name, address) {
        (Some(n), Some(a)) if n != a => Some(format!("{n} <{a}>")),
        (Some(n), _) => Some(n),
        (None, a) => a,
    }
}

/// Extract a `.msg` body.
pub(crate) fn extract(bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let ole = Ole::open(bytes, Format::Msg)?;
    let mut m = Message {
        ole,
        sink,
        encoding: encoding_rs::WINDOWS_1252,
    };
    let fixed = m.fixed("", 32)?;
    if let Some(cp) = fixed
        .long(MESSAGE_CODEPAGE)
        .or_else(|| fixed.long(INTERNET_CPID))
    {
        m.encoding = code_page(cp);
    }

    if let Some(subject) = m.string("", SUBJECT)? {
        m.header("Subject", &subject);
    }
    let name = match m.string("", SENDER_NAME)? {
        Some(n) => Some(n),
        None => m.string("", SENT_REPRESENTING_NAME)?,
    };
    let mut address = None;
    for id in [SENDER_SMTP_ADDRESS, SENDER_EMAIL, SENT_REPRESENTING_EMAIL] {
        // Exchange-internal X.500 addresses ("/O=…") are no use to a reader
        if let Some(a) = m.string("", id)?.filter(|a| a.contains('@')) {
            address = Some(a);
            break;
        }
    }
    if let Some(from) = person(name, address) {
        m.header("From", &from);
    }

    // recipients: [To, Cc, Bcc]
    let mut lists: [Vec<String>; 3] = Default::default();
    for dir in m.ole.storages("__recip_version1.0_") {
        let kind = m.fixed(&dir, 8)?.long(RECIPIENT_TYPE).unwrap_or(1);
        let name = m.string(&dir, DISPLAY_NAME)?;
        let address = match m.string(&dir, SMTP_ADDRESS)? {
            Some(a) => Some(a),
            None => m.string(&dir, EMAIL_ADDRESS)?.filter(|a| a.contains('@')),
        };
        let list = match kind & 0x0FFF_FFFF {
            2 => &mut lists[1],
            3 => &mut lists[2],
            _ => &mut lists[0],
        };
        list.extend(person(name, address));
    }
    for ((label, display), list) in [("To", DISPLAY_TO), ("Cc", DISPLAY_CC), ("Bcc", DISPLAY_BCC)]
        .into_iter()
        .zip(lists)
    {
        let value = if list.is_empty() {
            m.string("", display)?
        } else {
            Some(list.join(", "))
        };
        if let Some(value) = value {
            m.header(label, &value);
        }
    }
    if let Some(date) = fixed.time(CLIENT_SUBMIT_TIME).and_then(filetime_rfc3339) {
        m.header("Date", &date);
    }

    m.sink.para();
    if let Some(body) = m.string("", BODY)? {
        m.sink.push(&body);
    } else if let Some(html_body) = m.ole.read_opt(
        &format!("/__substg1.0_{BODY_HTML:04X}0102"),
        m.sink.budget(),
    )? {
        html::extract(&html_body, m.sink)?;
    } else if let Some(html_body) = m.string("", BODY_HTML)? {
        html::extract_str(&html_body, m.sink)?;
    }

    let mut names = Vec::new();
    for dir in m.ole.storages("__attach_version1.0_") {
        let name = match m.string(&dir, ATTACH_LONG_FILENAME)? {
            Some(n) => Some(n),
            None => match m.string(&dir, ATTACH_FILENAME)? {
                Some(n) => Some(n),
                None => m.string(&dir, DISPLAY_NAME)?,
            },
        };
        names.push(name.unwrap_or_else(|| "(unnamed)".to_owned()));
    }
    if !names.is_empty() {
        m.sink.para();
        m.header("Attachments", &names.join(", "));
    }
    Ok(())
}

/// The encoding of a Windows code page number (Windows-1252 when unknown).
fn code_page(cp: u32) -> &'static Encoding {
    let label = match cp {
        65001 => "utf-8".to_owned(),
        874 | 1250..=1258 => format!("windows-{cp}"),
        932 => "shift_jis".to_owned(),
        936 => "gbk".to_owned(),
        949 => "euc-kr".to_owned(),
        950 => "big5".to_owned(),
        20866 => "koi8-r".to_owned(),
        21866 => "koi8-u".to_owned(),
        28592..=28606 => format!("iso-8859-{}", cp - 28590),
        50220..=50222 => "iso-2022-jp".to_owned(),
        51932 => "euc-jp".to_owned(),
        54936 => "gb18030".to_owned(),
        _ => return encoding_rs::WINDOWS_1252,
    };
    Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::WINDOWS_1252)
}

/// A FILETIME (100 ns ticks since 1601-01-01 UTC) as `YYYY-MM-DDThh:mm:ssZ`.
fn filetime_rfc3339(ticks: u64) -> Option<String> {
    let secs = i64::try_from(ticks / 10_000_000).ok()? - 11_644_473_600;
    if ticks == 0 || secs < 0 {
        return None;
    }
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetimes() {
        // 2024-03-01T12:30:05Z
        let unix = 1_709_296_205u64;
        assert_eq!(
            filetime_rfc3339((unix + 11_644_473_600) * 10_000_000).as_deref(),
            Some("2024-03-01T12:30:05Z")
        );
        assert_eq!(filetime_rfc3339(0), None);
        assert_eq!(code_page(1251), encoding_rs::WINDOWS_1251);
        assert_eq!(code_page(28595), encoding_rs::ISO_8859_5);
        assert_eq!(code_page(1), encoding_rs::WINDOWS_1252);
    }
}
