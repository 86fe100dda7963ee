// The bench's no-op child: exits 0 at once. Linked -static so the dynamic loader does not hide
// the spawner's overhead behind its own (ld.so costs more than posix_spawn itself).
int main() {
    return 0;
}
