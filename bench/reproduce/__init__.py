"""`t2mbench reproduce`: published paper tables next to what runs here (spec files in ``specs/``)."""
