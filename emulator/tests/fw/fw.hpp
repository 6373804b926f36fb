// Minimal STM32F103 register access and helpers for the emulator's test programs.
#pragma once
#include <stdint.h>

#define REG(addr) (*reinterpret_cast<volatile uint32_t*>(addr))
#define REG16(addr) (*reinterpret_cast<volatile uint16_t*>(addr))

// RCC
#define RCC_CR REG(0x40021000)
#define RCC_CFGR REG(0x40021004)
#define RCC_AHBENR REG(0x40021014)
#define RCC_APB2ENR REG(0x40021018)
#define RCC_APB1ENR REG(0x4002101C)
#define RCC_CSR REG(0x40021024)
// GPIO
#define GPIOA_CRL REG(0x40010800)
#define GPIOA_CRH REG(0x40010804)
#define GPIOA_IDR REG(0x40010808)
#define GPIOA_ODR REG(0x4001080C)
#define GPIOA_BSRR REG(0x40010810)
#define GPIOC_CRH REG(0x40011004)
#define GPIOC_ODR REG(0x4001100C)
#define GPIOC_BSRR REG(0x40011010)
// USART1
#define USART1_SR REG(0x40013800)
#define USART1_DR REG(0x40013804)
#define USART1_BRR REG(0x40013808)
#define USART1_CR1 REG(0x4001380C)
#define USART1_CR3 REG(0x40013814)
// FLASH
#define FLASH_ACR REG(0x40022000)
#define FLASH_KEYR REG(0x40022004)
#define FLASH_SR REG(0x4002200C)
#define FLASH_CR REG(0x40022010)
#define FLASH_AR REG(0x40022014)
// SysTick / SCB / NVIC / DWT
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)
#define SCB_ICSR REG(0xE000ED04)
#define SCB_VTOR REG(0xE000ED08)
#define SCB_AIRCR REG(0xE000ED0C)
#define NVIC_ISER0 REG(0xE000E100)
#define NVIC_ISER1 REG(0xE000E104)
#define DEMCR REG(0xE000EDFC)
#define DWT_CTRL REG(0xE0001000)
#define DWT_CYCCNT REG(0xE0001004)
// DMA1
#define DMA1_ISR REG(0x40020000)
#define DMA1_IFCR REG(0x40020004)
#define DMA1_CCR(n) REG(0x40020008 + 20 * ((n)-1))
#define DMA1_CNDTR(n) REG(0x4002000C + 20 * ((n)-1))
#define DMA1_CPAR(n) REG(0x40020010 + 20 * ((n)-1))
#define DMA1_CMAR(n) REG(0x40020014 + 20 * ((n)-1))
// CRC, IWDG, SPI1
#define CRC_DR REG(0x40023000)
#define CRC_CR REG(0x40023008)
#define IWDG_KR REG(0x40003000)
#define IWDG_PR REG(0x40003004)
#define IWDG_RLR REG(0x40003008)
#define IWDG_SR REG(0x4000300C)
#define SPI1_CR1 REG(0x40013000)
#define SPI1_CR2 REG(0x40013004)
#define SPI1_SR REG(0x40013008)
#define SPI1_DR REG(0x4001300C)

// Results for the host test: words at 0x20004000.
#define RESULT(i) REG(0x20004000 + 4 * (i))

inline void clock_72mhz() {
  RCC_CR |= 1u << 16;  // HSE on
  while (!(RCC_CR & (1u << 17))) {
  }
  FLASH_ACR = 0x12;                     // prefetch, 2 wait states
  RCC_CFGR = (7u << 18) | (1u << 16) | (4u << 8);  // PLL = HSE x 9, APB1 = /2
  RCC_CR |= 1u << 24;
  while (!(RCC_CR & (1u << 25))) {
  }
  RCC_CFGR = (RCC_CFGR & ~3u) | 2u;
  while (((RCC_CFGR >> 2) & 3u) != 2u) {
  }
}

inline void uart_init(uint32_t pclk2, uint32_t baud) {
  RCC_APB2ENR |= (1u << 14) | (1u << 2) | 1u;  // USART1, GPIOA, AFIO
  GPIOA_CRH = (GPIOA_CRH & ~0xFF0u) | 0x4B0u;   // PA9 AF push-pull 50 MHz, PA10 floating input
  USART1_BRR = (pclk2 + baud / 2) / baud;
  USART1_CR1 = (1u << 13) | (1u << 3) | (1u << 2);  // UE, TE, RE
}

inline void uart_putc(char c) {
  while (!(USART1_SR & (1u << 7))) {
  }
  USART1_DR = static_cast<uint8_t>(c);
}

inline void uart_puts(const char* s) {
  while (*s) uart_putc(*s++);
}

inline void uart_flush() {
  while (!(USART1_SR & (1u << 6))) {
  }
}

inline void uart_hex(uint32_t v) {
  for (int i = 7; i >= 0; --i) uart_putc("0123456789abcdef"[(v >> (4 * i)) & 0xF]);
}

inline int uart_getc() {
  while (!(USART1_SR & (1u << 5))) {
  }
  return static_cast<int>(USART1_DR & 0xFF);
}

inline void led_init() {
  RCC_APB2ENR |= 1u << 4;
  GPIOC_CRH = (GPIOC_CRH & ~(0xFu << 20)) | (0x2u << 20);  // PC13 push-pull output 2 MHz
}
inline void led(bool on) { GPIOC_BSRR = on ? (1u << (13 + 16)) : (1u << 13); }

// Busy-waits n core cycles on the DWT cycle counter (the program turns it on: DEMCR.TRCENA,
// DWT_CTRL.CYCCNTENA).
inline void delay_cycles(uint32_t n) {
  const uint32_t t0 = DWT_CYCCNT;
  while (DWT_CYCCNT - t0 < n) {
  }
}

inline void bkpt_stop() { __asm volatile("bkpt 0x01"); }
