"""Target-domain data: UCR series, sequences, tables, their tokenisers, source samples."""
