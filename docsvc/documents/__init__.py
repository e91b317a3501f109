"""Official documents (văn bản) per Decree 30/2020: registration, numbering, files, sharing."""
