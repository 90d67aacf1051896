"""What a person reads or looks at: terminal tables (:mod:`.tables`), figures saved as run artifacts
(:mod:`.figures`) and poses drawn on images (:mod:`.drawing`)."""
