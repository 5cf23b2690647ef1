"""Bridges: trainable input transformations, one module per bridge.

A bridge maps a batch of target samples to a batch of source-model inputs and
owns the input-side trainable parameters (theta). It knows nothing of the
source model beyond its input spec.

    series.py                what the series bridges share
    series_factory.py        `series_bridge`: the bridge a setting record asks for
    waveform.py              SeriesToWaveform: the series as samples (Voice2Series)
    tones.py                 SeriesToTones: the series as the pitch of tones
    filtered_tones.py        FilteredTones: the tones of a trainably filtered series, beside the untrained
    series_image.py          SeriesToImage: the series' overlapping windows (TiViT), its recurrence plot or a
                             line chart as an image
    fused.py                 FusedBridge: one bridge per source of a fused source, side by side
    table_encoding.py        TableEncoder: a table row as intensities (fitted, saved with the run)
    table_to_image.py        TableToImage: those intensities as an image of squares
    cell_readout.py          each feature map's mean over each feature's square
    tokens_to_embeddings.py  TokensToEmbeddings: tokens into a language model's input space
"""
