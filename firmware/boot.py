# boot.py: runs first after every reset, before the USB REPL is usable. It does nothing slow and
# nothing that can fail, so a wrong board or a missing cable never locks you out: the network comes
# up in main.py, which Ctrl-C interrupts (and `mpremote` stops before it copies files).
import gc

gc.collect()
