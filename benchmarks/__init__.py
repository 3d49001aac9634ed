"""Benchmark suites: model-only and end-to-end FPS, SSIM/PSNR quality, machine info, reports.

    edgesharp bench fps | quality | all [--quick] [--out DIR] [--compare OLD.json]
"""
