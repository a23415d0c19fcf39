//! A job's own quotas: documents and bytes written. Once breached, the breach sticks: every
//! later call is refused and the job fails, even if the plugin ignores the error.

use crate::bindings::index::IndexError;

/// What a job has written against its limits.
#[derive(Debug)]
pub(crate) struct JobQuota {
    max_documents: u64,
    max_bytes: u64,
    documents: u64,
    bytes: u64,
    breach: Option<String>,
}

impl JobQuota {
    pub(crate) fn new(max_documents: u64, max_bytes: u64) -> Self {
        Self {
            max_documents,
            max_bytes,
            documents: 0,
            bytes: 0,
            breach: None,
        }
    }

    /// The breach, once there is one.
    pub(crate) fn breach(&self) -> Option<&str> {
        self.breach.as_deref()
    }

    /// Charges `documents` / `bytes`; on a breach nothing is charged, and the breach is
    /// remembered and returned.
    pub(crate) fn charge(&mut self, documents: u64, bytes: u64) -> Result<(), IndexError> {
        let total_documents = self.documents.saturating_add(documents);
        let total_bytes = self.bytes.saturating_add(bytes);
        let breach = if total_documents > self.max_documents {
            Some(format!(
                "the job would write {total_documents} documents; its quota is {}",
                self.max_documents
            ))
        } else if total_bytes > self.max_bytes {
            Some(format!(
                "the job would write {total_bytes} bytes of documents; its quota is {} bytes",
                self.max_bytes
            ))
        } else {
            None
        };
        if let Some(breach) = breach {
            self.breach = Some(breach.clone());
            return Err(IndexError::QuotaExceeded(breach));
        }
        self.documents = total_documents;
        self.bytes = total_bytes;
        Ok(())
    }
}
