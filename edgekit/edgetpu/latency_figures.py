"""The Edge TPU latency model's figures: published hardware numbers (array, links, host CPUs)
and the constants calibrated on Coral's benchmark table (no TensorFlow, no imports).

Every figure's source is in docs/DESIGN.md ("Latency model"); the calibrated constants were fitted
by ``scripts/bench_latency.py --fit`` on the calibration rows of Coral's benchmark table only.
"""

from __future__ import annotations

# ---- published hardware figures ----------------------------------------------------------------
TPU_PEAK_MACS_PER_S = 2e12  # 4 TOPS int8 (Coral), 2 ops (multiply + add) per MAC
LANES = 64  # 64x64 MAC array: 4 TOPS / 2 / 64**2 = ~500 MHz (libedgetpu "max" clock)
# Link payload rates, bytes/s. USB 3.0 Gen 1: 5 Gbit/s signalling, 8b/10b -> 500 MB/s. USB 2.0
# High-Speed bulk: 13 packets of 512 B per 125 us microframe -> 53.248 MB/s (USB 2.0 spec 5.8.4).
# PCIe Gen 2 x1 (Coral M.2 / Mini PCIe): 5 GT/s, 8b/10b -> 500 MB/s.
LINK_BYTES_PER_S = {"usb3": 500e6, "usb2": 53.248e6, "pci": 500e6}
LINKS = ("usb3", "usb2", "pci")
LINK_NAMES = {"usb3": "USB 3 Coral", "usb2": "USB 2 Coral", "pci": "PCIe Coral"}

# ---- calibrated on Coral's table 1 (calibration rows only; scripts/bench_latency.py --fit) -----
CALIBRATION = {
    "tpu_efficiency": 0.411,  # fraction of the padded peak the array sustains
    "depthwise_cost": 28.116,  # a depthwise MAC costs this many padded conv MACs (of 64 lanes)
    "op_overhead_us": 5.697,  # per mapped op (instruction dispatch)
    "invoke_overhead_us": 695.827,  # per inference (link round trips, runtime dispatch)
    "link_efficiency": 1.0,  # fraction of the link payload rate achieved when streaming
    # an activation (op output) larger than this does not stay in the on-chip memory: it
    # crosses the link out and back (what the compiler's "large activation tensors" refers to)
    "activation_budget_mib": 2.343,
}
# PCIe has no USB transaction round trip: Coral's Dev Board (Edge TPU on PCIe) runs MobileNet v1
# in the same 2.4 ms as the USB 3 Accelerator, so the same overhead is kept (not fitted).

# ---- host CPU (ops the compiler leaves on the CPU) ------------------------------------------
# Raspberry Pi 4: 4x Cortex-A72 @ 1.5 GHz. Rates from Coral's table's "Embedded CPU" column
# (4x Cortex-A53 @ 1.5 GHz: MobileNet v1 224, 569 M MACs in 164 ms -> 3.5 GMAC/s): the Pi 4's
# A72 is faster per clock, so CPU parts are on the slow side. Element-wise/data-movement ops:
# 0.5 G int8 elements/s (an assumption: a few instructions per element, memory bound).
HOSTS = {
    "pi4": {"macs_per_s": 3.5e9, "elements_per_s": 0.5e9, "op_overhead_us": 20.0},
    # Coral's "Desktop CPU" (Xeon, table 1 footnote): MobileNet v1 in 53 ms -> 10.7 GMAC/s;
    # used only to remove the CPU part of the calibration rows (their host was a desktop).
    "desktop": {"macs_per_s": 10.7e9, "elements_per_s": 2e9, "op_overhead_us": 5.0},
}

# Median compute-equivalent MACs (padded, depthwise at depthwise_cost, element-wise ops at 64 per
# element) per padded parameter byte over the 12 calibration models, each scaled to a 224x224
# input (scripts/bench_latency.py): a compiled model's compute is estimated from its
# executable's size, scaled by its input area.
MACS_PER_PARAMETER_BYTE = 325.3
