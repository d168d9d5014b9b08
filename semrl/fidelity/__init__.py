"""Task fidelity of decoded pictures: mAP, mask mAP, mIoU, top-1, and pixel distortion.

Importing this package does not import torch or ultralytics.
"""

from semrl.fidelity.classification import top1_accuracy, top1_agreement, top1_classes, top1_of_classes
from semrl.fidelity.distortion import plane_ssim, psnr, semantic_distortion, ssim

__all__ = [
    "plane_ssim",
    "psnr",
    "semantic_distortion",
    "ssim",
    "top1_accuracy",
    "top1_agreement",
    "top1_classes",
    "top1_of_classes",
]
