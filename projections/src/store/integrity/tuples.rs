//! The rows of a `COPY … TO STDOUT (FORMAT binary)`, read in place.
//!
//! The verification reads every event once; through the query protocol
//! each row becomes a decoded, type-checked row object, which cost it more
//! than the hashing. The binary copy format is a plain sequence of
//! length-prefixed fields, and the server sends each row as one message:
//! the fields are sliced out of that message and nothing is copied.

use super::StoreError;

/// What starts a binary copy: its signature, then a flags word and the
/// length of a header extension.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// One row of the copy: its fields, `None` for a null.
pub(super) struct Tuple<'m> {
    fields: Vec<Option<&'m [u8]>>,
}

/// What one message of the copy holds.
pub(super) enum Message<'m> {
    Row(Tuple<'m>),
    /// The trailer: no row follows.
    End,
}

/// Reads the messages of one copy in order; the first carries the header
/// before its row.
#[derive(Default)]
pub(super) struct Reader {
    started: bool,
}

impl Reader {
    pub(super) fn read<'m>(&mut self, mut message: &'m [u8]) -> Result<Message<'m>, StoreError> {
        if !self.started {
            let rest = message
                .strip_prefix(SIGNATURE)
                .ok_or_else(|| corrupt("the copy does not start with its signature"))?;
            let (_flags, rest) = take(rest, 4)?;
            let (extension, rest) = take(rest, 4)?;
            let (_, rest) = take(rest, be_u32(extension) as usize)?;
            message = rest;
            self.started = true;
        }
        let (count, mut rest) = take(message, 2)?;
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(Message::End);
        }
        let mut fields = Vec::with_capacity(count.max(0) as usize);
        for _ in 0..count {
            let (length, after) = take(rest, 4)?;
            let length = be_u32(length) as i32;
            if length < 0 {
                fields.push(None);
                rest = after;
            } else {
                let (field, after) = take(after, length as usize)?;
                fields.push(Some(field));
                rest = after;
            }
        }
        if !rest.is_empty() {
            return Err(corrupt("a row of the copy is longer than its fields"));
        }
        Ok(Message::Row(Tuple { fields }))
    }
}

impl<'m> Tuple<'m> {
    pub(super) fn bytes(&self, field: usize) -> Result<Option<&'m [u8]>, StoreError> {
        self.fields
            .get(field)
            .copied()
            .ok_or_else(|| corrupt("a row of the copy lacks a field"))
    }

    pub(super) fn required(&self, field: usize) -> Result<&'m [u8], StoreError> {
        self.bytes(field)?
            .ok_or_else(|| corrupt("a field of the copy that cannot be null is"))
    }

    /// A `bigint`, or an `xid8`: eight bytes, big-endian.
    pub(super) fn int8(&self, field: usize) -> Result<i64, StoreError> {
        let bytes: [u8; 8] = self
            .required(field)?
            .try_into()
            .map_err(|_| corrupt("a 64-bit field of the copy is not 8 bytes long"))?;
        Ok(i64::from_be_bytes(bytes))
    }

    pub(super) fn uuid(&self, field: usize) -> Result<uuid::Uuid, StoreError> {
        uuid::Uuid::from_slice(self.required(field)?)
            .map_err(|_| corrupt("a uuid field of the copy is not 16 bytes long"))
    }
}

fn take(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), StoreError> {
    if bytes.len() < n {
        return Err(corrupt("a row of the copy ends before its fields"));
    }
    Ok(bytes.split_at(n))
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("verification: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(bytes: Option<&[u8]>) -> Vec<u8> {
        match bytes {
            None => (-1i32).to_be_bytes().to_vec(),
            Some(b) => [(b.len() as i32).to_be_bytes().as_slice(), b].concat(),
        }
    }

    fn row(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut row = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            row.extend(field(*f));
        }
        row
    }

    #[test]
    fn reads_the_header_the_rows_and_the_trailer() {
        let first = [
            SIGNATURE,
            &0u32.to_be_bytes(),
            &3u32.to_be_bytes(),
            b"ext",
            &row(&[Some(b"Reservation"), None, Some(&42i64.to_be_bytes())]),
        ]
        .concat();
        let mut reader = Reader::default();
        let Message::Row(tuple) = reader.read(&first).unwrap() else {
            panic!("a row was expected");
        };
        assert_eq!(tuple.required(0).unwrap(), b"Reservation");
        assert_eq!(tuple.bytes(1).unwrap(), None);
        assert_eq!(tuple.int8(2).unwrap(), 42);
        assert!(tuple.bytes(3).is_err(), "a field past the row");
        assert!(tuple.required(1).is_err(), "a null where none may be");

        let id = uuid::Uuid::new_v4();
        let second = row(&[Some(id.as_bytes())]);
        let Message::Row(tuple) = reader.read(&second).unwrap() else {
            panic!("a row was expected");
        };
        assert_eq!(tuple.uuid(0).unwrap(), id);
        assert!(tuple.int8(0).is_err(), "16 bytes are no bigint");
        assert!(matches!(
            reader.read(&(-1i16).to_be_bytes()).unwrap(),
            Message::End
        ));
    }

    #[test]
    fn refuses_what_is_not_a_binary_copy() {
        assert!(Reader::default().read(b"1\tReservation\n").is_err());
        let mut reader = Reader { started: true };
        let whole = row(&[Some(b"abc")]);
        assert!(reader.read(&whole[..whole.len() - 1]).is_err(), "cut short");
        assert!(
            reader.read(&[whole.as_slice(), b"x"].concat()).is_err(),
            "trailing bytes"
        );
    }
}
