// The libc-free child (issue 16): no libc, no dynamic loader, no static initializers. execve
// maps it and it exits 0 at once, so a spawn row measured with it is the spawner's work plus the
// kernel's exec and exit, nothing of a C runtime's start-up. x86-64 only (built where it links).
extern "C" [[noreturn]] void _start() {
    asm volatile(
        "mov $60, %%eax\n\t"  // SYS_exit
        "xor %%edi, %%edi\n\t"
        "syscall" ::
            : "rax", "rdi", "rcx", "r11", "memory");
    __builtin_unreachable();
}
