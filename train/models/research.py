"""Architectures of the student studies (docs/model-history.md, docs/benchmarks.md): kept so that their configs,
checkpoints and stored benchmark runs can be rebuilt; none is shipped or used by a recipe of the default model
(`lean-from-v12.yaml` and `lean-continue.yaml` train one for the 720p study).
`edgesharp.train.models.create` takes these names too; `edgesharp train archs` lists them under "research".
"""

RESEARCH: dict[str, tuple[dict, str]] = {
    "nafnet-tiny-seedcode": (
        {'width': 16, 'enc_blk_nums': [2, 2, 4, 8], 'middle_blk_num': 2, 'dec_blk_nums': [2, 2, 2, 2]},
        "the configuration the seed's code builds: width 16, [2,2,4,8]/2/[2,2,2,2]",
    ),
    "nafnet-w16-small": (
        {'width': 16, 'enc_blk_nums': [1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1]},
        'width 16, [1,1,2]/1/[1,1,1] at full resolution',
    ),
    "nafnet-ps2-w16": (
        {'shuffle': 2, 'width': 16, 'enc_blk_nums': [2, 2, 4], 'middle_blk_num': 2, 'dec_blk_nums': [2, 2, 2]},
        'pixel-unshuffle x2 stem, width 16, [2,2,4]/2/[2,2,2], pixel-shuffle back, global residual',
    ),
    "nafnet-ps4-w32": (
        {'shuffle': 4, 'width': 32, 'enc_blk_nums': [2, 2, 4], 'middle_blk_num': 2, 'dec_blk_nums': [2, 2, 2]},
        'pixel-unshuffle x4 stem, width 32, [2,2,4]/2/[2,2,2], pixel-shuffle back, global residual',
    ),
    "nafnet-rt": (
        {'shuffle': 4, 'width': 32, 'enc_blk_nums': [1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1], 'norm': 'none'},
        'real-time student: pixel-unshuffle x4, width 32, [1,1,2]/1/[1,1,1], no normalisation',
    ),
    "nafnet-rt-lite": (
        {'shuffle': 4, 'width': 24, 'enc_blk_nums': [1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1], 'norm': 'none'},
        'lighter real-time student: pixel-unshuffle x4, width 24, [1,1,2]/1/[1,1,1], no normalisation',
    ),
    "nafnet-rt-lite-rms": (
        {'shuffle': 4, 'width': 24, 'enc_blk_nums': [1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1], 'norm': 'rmsnorm'},
        "nafnet-rt-lite with an RMS norm (one channel reduction; LayerNorm's heavy-blur gain at 0.88x the speed)",
    ),
    "nafnet-rt-ln": (
        {'shuffle': 4, 'width': 32, 'enc_blk_nums': [1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1], 'norm': 'layernorm'},
        "real-time student: nafnet-rt with NAFNet's LayerNorm (1.25x its OpenVINO time, better on heavy blur)",
    ),
    "nafnet-rt-s2-w12": (
        {'shuffle': 2, 'width': 12, 'enc_blk_nums': [0, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [0, 1, 1], 'norm': 'rmsnorm'},
        'nafnet-rt-s2 at width 12 with three levels (blocks at 1/16 with width 24, like nafnet-rt-lite-rms)',
    ),
    "nafnet-rt-deep": (
        {'shuffle': 4, 'width': 16, 'enc_blk_nums': [2, 2, 4], 'middle_blk_num': 2, 'dec_blk_nums': [2, 2, 2], 'norm': 'rmsnorm'},
        'pixel-unshuffle x4, width 16, 16 blocks [2,2,4]/2/[2,2,2], RMS norm: depth instead of width',
    ),
    "nafnet-rt-deeper": (
        {'shuffle': 4, 'width': 16, 'enc_blk_nums': [2, 3, 6], 'middle_blk_num': 3, 'dec_blk_nums': [2, 2, 2], 'norm': 'rmsnorm'},
        'nafnet-rt-deep with 4 more blocks at 1/64 to 1/1024 of the pixels (20 blocks)',
    ),
    "nafnet-rt-fast": (
        {'shuffle': 4, 'width': 16, 'enc_blk_nums': [1, 2, 4], 'middle_blk_num': 2, 'dec_blk_nums': [1, 1, 1], 'norm': 'rmsnorm'},
        "nafnet-rt-deep less 4 blocks (12), mostly in the decoder: 1.2-1.3x nafnet-rt-lite-rms's OpenVINO speed",
    ),
    "nafnet-rt-wide-stem": (
        {'shuffle': 4, 'width': 32, 'enc_blk_nums': [0, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [0, 1, 1], 'norm': 'rmsnorm'},
        'pixel-unshuffle x4 into width 32 with no blocks at 1/16: a wider first and last conv',
    ),
    "nafnet-rt-lite-rms-k5": (
        {'shuffle': 4, 'width': 24, 'enc_blk_nums': [1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1], 'norm': 'rmsnorm', 'kernel_size': 5},
        'nafnet-rt-lite-rms with 5x5 depthwise convolutions',
    ),
    # v12's graph less its one block at the stem's resolution (the decoder's last level, width 8 at 1/4 of the
    # pixels: about a fifth of a 1280x720 frame's time), plus a block at 1/256 that costs almost nothing
    "nafnet-rt-s2-lean": (
        {'shuffle': 2, 'width': 8, 'enc_blk_nums': [0, 1, 1, 2], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1, 0], 'norm': 'rmsnorm'},
        "nafnet-rt-s2 with no block at the stem's resolution and one more at 1/256 of the pixels (width 64)",
    ),
}
