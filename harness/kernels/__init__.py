"""Other Linux kernels as targets: `--target kernel@VERSION` (a Debian kernel package) or
`kernel@PATH` (a kernel image of one's own), booted in a virtual machine with virtme-ng, the
case suite run inside it by the same runner, the results brought back and merged.

- `spec.py`: what `kernel@...` names, and the expectations a guest kernel's results take;
- `cache.py`: where kernels are kept, and what a kept kernel is (its manifest);
- `debian.py`: finding a version in Debian's archive with a private APT configuration and
  fetching it with apt's signature checks;
- `prune.py`: keeping only the kernel image and the modules a guest needs;
- `vm.py`: the accelerator, the virtme-ng command, and one boot that runs cases;
- `guest.py`: what runs inside the guest (modules, sysctls, the runner).
"""
