# vmcode-gdb.py: gdb sees the libraries vmcode loads privately.
#
# vmcode maps plug-in libraries itself, so gdb's shared-library list (fed by
# the system loader's r_debug) never shows them: their frames would be "??",
# breakpoints in them would stay pending.  vmcode keeps its own list,
# vmc_debug_registry (layout in src/lib/debug_registry.h, version 1), and
# calls vmc_debug_libraries_changed() after every change.  This script puts
# a silent breakpoint there that continues at once; each time it is hit, and
# whenever the program stops for any other reason (gdb -p, attach, a fork),
# it compares the list with what it told gdb and runs
# "add-symbol-file FILE -o BIAS" for each new library and
# "remove-symbol-file -a ADDR" for each one gone.  Names, file:line,
# breakpoints (pending ones resolve when the library arrives) and unwinding
# then work as for a dlopen'ed library.
#
# gdb loads this from libvmcode's .debug_gdb_scripts section (when the
# program is in gdb's auto-load safe-path) or from share/gdb/auto-load after
# make install; "source vmcode-gdb.py" works too.  Loading it twice is
# harmless.
#
# Command: info vmcode-libraries   the private libraries, their addresses,
#                                  whether gdb has their symbols.

import os
import struct

import gdb

_REGISTRY = "vmc_debug_registry"
_HOOK = "vmc_debug_libraries_changed"
_VERSION = 1
_HEAD = struct.Struct("<IIQQQ")     # version, entry_size, generation, count, first
_ENTRY = struct.Struct("<QQQQQQQII")  # next, prev, path, bias, start, size, text, flags, reserved
_FROM_MEMORY = 1


class _Space:
    """What this script told gdb about one program space."""

    def __init__(self):
        self.generation = None   # the registry's generation at the last sync
        self.libs = {}           # (path, bias, start) -> _Lib


class _Lib:
    def __init__(self, path, bias, start, size, text, flags):
        self.path, self.bias, self.start, self.size = path, bias, start, size
        self.text, self.flags = text, flags
        self.symbols = False     # add-symbol-file succeeded


class _VmcodeDebug:
    def __init__(self):
        self.spaces = {}
        self.hook = None

    # ---- reading the registry ------------------------------------------------
    def _registry(self):
        """The registry's address in the current inferior, or None."""
        inf = gdb.selected_inferior()
        if inf is None or inf.pid == 0:
            return None
        try:
            return int(gdb.parse_and_eval("(unsigned long)&'%s'" % _REGISTRY))
        except gdb.error:
            return None

    def _string(self, inf, addr):
        out = b""
        while len(out) < 65536:
            try:
                chunk = bytes(inf.read_memory(addr + len(out), 256))
            except gdb.MemoryError:
                chunk = b""
                for i in range(256):  # the last bytes before unmapped memory
                    try:
                        chunk += bytes(inf.read_memory(addr + len(out) + i, 1))
                    except gdb.MemoryError:
                        break
                if not chunk:
                    break
            end = chunk.find(b"\0")
            if end >= 0:
                return (out + chunk[:end]).decode("utf-8", "replace")
            out += chunk
        return out.decode("utf-8", "replace")

    def _read(self):
        """(generation, [entries]) from the registry, or None."""
        addr = self._registry()
        if addr is None:
            return None
        inf = gdb.selected_inferior()
        try:
            version, entry_size, gen, count, node = _HEAD.unpack(
                bytes(inf.read_memory(addr, _HEAD.size)))
        except gdb.MemoryError:
            return None
        if version != _VERSION or entry_size < _ENTRY.size:
            gdb.write("vmcode: registry version %u (entry %u bytes) unknown to this "
                      "script (version %u)\n" % (version, entry_size, _VERSION), gdb.STDERR)
            return None
        libs = []
        while node and len(libs) <= count:
            f = _ENTRY.unpack(bytes(inf.read_memory(node, _ENTRY.size)))
            libs.append(_Lib(self._string(inf, f[2]), f[3], f[4], f[5], f[6], f[7]))
            node = f[0]
        return gen, libs

    # ---- telling gdb -----------------------------------------------------------
    def _space(self):
        ps = gdb.current_progspace()
        sp = self.spaces.get(ps)
        if sp is None:
            sp = self.spaces[ps] = _Space()
        return sp

    def _quiet(self, cmd):
        confirm = gdb.parameter("confirm")
        gdb.execute("set confirm off", to_string=True)
        try:
            gdb.execute(cmd, to_string=True)
        finally:
            if confirm:
                gdb.execute("set confirm on", to_string=True)

    def _add(self, lib):
        if lib.flags & _FROM_MEMORY or not os.path.isfile(lib.path):
            return  # listed, but there is no file to read symbols from
        try:
            self._quiet("add-symbol-file %s -o %#x" % (_quote(lib.path), lib.bias))
            lib.symbols = True
        except gdb.error as e:
            gdb.write("vmcode: add-symbol-file %s: %s\n" % (lib.path, e), gdb.STDERR)

    def _remove(self, lib):
        if not lib.symbols:
            return
        try:
            self._quiet("remove-symbol-file -a %#x" % lib.text)
        except gdb.error:
            try:
                self._quiet("remove-symbol-file %s" % _quote(lib.path))
            except gdb.error as e:
                gdb.write("vmcode: remove-symbol-file %s: %s\n" % (lib.path, e), gdb.STDERR)
        lib.symbols = False

    def sync(self, force=False):
        """Bring gdb's symbol files in line with the registry."""
        got = self._read()
        if got is None:
            return
        gen, libs = got
        sp = self._space()
        if gen == sp.generation and not force:
            return
        now = {(l.path, l.bias, l.start): l for l in libs}
        for key in [k for k in sp.libs if k not in now]:
            self._remove(sp.libs.pop(key))
        for key, lib in now.items():
            if key not in sp.libs:
                sp.libs[key] = lib
                self._add(lib)
        sp.generation = gen

    def forget(self):
        """The process is gone: take every library's symbols away, so no
        breakpoint is left at an address the next run has not mapped."""
        sp = self._space()
        for lib in sp.libs.values():
            self._remove(lib)
        sp.libs.clear()
        sp.generation = None

    def libraries(self):
        return list(self._space().libs.values())


def _quote(path):
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _HookBreakpoint(gdb.Breakpoint):
    """Silent; syncs and lets the program go on."""

    def __init__(self, state):
        super().__init__(_HOOK, type=gdb.BP_BREAKPOINT, internal=True)
        self.silent = True
        self._state = state

    def stop(self):
        try:
            self._state.sync()
        except Exception as e:  # never leave the program stopped in the hook
            gdb.write("vmcode: %s\n" % e, gdb.STDERR)
        return False


class _InfoLibraries(gdb.Command):
    """List the libraries vmcode loaded privately: the piece of the code region
each occupies, its load bias, whether gdb has its symbols, and its path."""

    def __init__(self, state):
        super().__init__("info vmcode-libraries", gdb.COMMAND_STATUS)
        self._state = state

    def invoke(self, arg, from_tty):
        self._state.sync()
        libs = self._state.libraries()
        if not libs:
            gdb.write("No libraries loaded privately by vmcode.\n")
            return
        gdb.write("%-18s %-18s %-18s %-4s %s\n" % ("From", "To", "Bias", "Syms", "Library"))
        for l in sorted(libs, key=lambda l: l.start):
            syms = "Yes" if l.symbols else ("Mem" if l.flags & _FROM_MEMORY else "No")
            gdb.write("%#-18x %#-18x %#-18x %-4s %s\n" % (l.start, l.start + l.size, l.bias, syms, l.path))


def _setup():
    state = _VmcodeDebug()
    try:
        state.hook = _HookBreakpoint(state)
    except gdb.error as e:
        gdb.write("vmcode: cannot stop at %s: %s\n" % (_HOOK, e), gdb.STDERR)
    _InfoLibraries(state)

    def on_stop(event):
        try:
            state.sync()
        except Exception as e:
            gdb.write("vmcode: %s\n" % e, gdb.STDERR)

    def on_exit(event):
        try:
            state.forget()
        except Exception as e:
            gdb.write("vmcode: %s\n" % e, gdb.STDERR)

    gdb.events.stop.connect(on_stop)
    gdb.events.exited.connect(on_exit)
    state.sync()  # gdb -p: the process is already running
    return state


if not hasattr(gdb, "_vmcode_debug"):
    gdb._vmcode_debug = _setup()
