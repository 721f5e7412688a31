"""Storage backends for object bytes: file://, s3:// and gs://, behind one interface."""
