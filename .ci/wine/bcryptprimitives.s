# bcryptprimitives.dll stand-in for Wine 8.0, which lacks that DLL.
#
# Go >= 1.22 loads bcryptprimitives.dll!ProcessPrng at start-up and aborts
# ("fatal error: bcryptprimitives.dll not found") when it is missing.
#
#   BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData);
#
# is implemented on top of advapi32!SystemFunction036 (RtlGenRandom):
#
#   BOOLEAN WINAPI SystemFunction036(PVOID RandomBuffer, ULONG RandomBufferLength);
#
# The buffer is filled in chunks of at most 1 GiB (SIZE_T is 64-bit, ULONG is
# 32-bit), and the result is returned as a full 32-bit BOOL (1 or 0) rather
# than the 8-bit BOOLEAN, so callers that test the whole register are right.
# Microsoft's ProcessPrng always returns TRUE; this one returns FALSE only if
# RtlGenRandom itself fails. Assemble with x86_64-w64-mingw32-as; no C
# compiler is needed.

        .text

        .globl  DllEntry
        .def    DllEntry; .scl 2; .type 32; .endef
DllEntry:                               # BOOL WINAPI DllMain(HINSTANCE, DWORD, LPVOID)
        movl    $1, %eax
        ret

        .globl  ProcessPrng
        .def    ProcessPrng; .scl 2; .type 32; .endef
        .seh_proc ProcessPrng
ProcessPrng:
        pushq   %rbx
        .seh_pushreg %rbx
        pushq   %rsi
        .seh_pushreg %rsi
        pushq   %rdi
        .seh_pushreg %rdi
        subq    $32, %rsp               # shadow space; rsp is now 16-byte aligned
        .seh_stackalloc 32
        .seh_endprologue
        movq    %rcx, %rbx              # rbx = next byte to fill
        movq    %rdx, %rsi              # rsi = bytes left
.Lloop:
        testq   %rsi, %rsi
        jz      .Lok
        movl    $0x40000000, %edi       # chunk = min(left, 1 GiB)
        cmpq    %rdi, %rsi
        cmovbq  %rsi, %rdi
        movq    %rbx, %rcx
        movl    %edi, %edx
        call    *__imp_SystemFunction036(%rip)
        testb   %al, %al
        jz      .Lfail
        addq    %rdi, %rbx
        subq    %rdi, %rsi
        jmp     .Lloop
.Lok:
        movl    $1, %eax
        jmp     .Lout
.Lfail:
        xorl    %eax, %eax
.Lout:
        addq    $32, %rsp
        popq    %rdi
        popq    %rsi
        popq    %rbx
        ret
        .seh_endproc
