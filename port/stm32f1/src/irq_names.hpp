// The 43 device interrupts of the medium-density STM32F103 in vector-table order (RM0008
// §10.1.2, table 63), with the handler names of ST's CMSIS start-up files, so that code written
// for them links unchanged: define `extern "C" void TIM2_IRQHandler()` and it is called.
// Each name not defined elsewhere is a weak alias of Default_Handler (startup.cpp).
#pragma once

#define OTA_STM32F1_IRQS(X) \
  X(WWDG_IRQHandler)  /* 0 */ \
  X(PVD_IRQHandler)  /* 1 */ \
  X(TAMPER_IRQHandler)  /* 2 */ \
  X(RTC_IRQHandler)  /* 3 */ \
  X(FLASH_IRQHandler)  /* 4 */ \
  X(RCC_IRQHandler)  /* 5 */ \
  X(EXTI0_IRQHandler)  /* 6 */ \
  X(EXTI1_IRQHandler)  /* 7 */ \
  X(EXTI2_IRQHandler)  /* 8 */ \
  X(EXTI3_IRQHandler)  /* 9 */ \
  X(EXTI4_IRQHandler)  /* 10 */ \
  X(DMA1_Channel1_IRQHandler)  /* 11 */ \
  X(DMA1_Channel2_IRQHandler)  /* 12 */ \
  X(DMA1_Channel3_IRQHandler)  /* 13 */ \
  X(DMA1_Channel4_IRQHandler)  /* 14 */ \
  X(DMA1_Channel5_IRQHandler)  /* 15 */ \
  X(DMA1_Channel6_IRQHandler)  /* 16 */ \
  X(DMA1_Channel7_IRQHandler)  /* 17 */ \
  X(ADC1_2_IRQHandler)  /* 18 */ \
  X(USB_HP_CAN1_TX_IRQHandler)  /* 19 */ \
  X(USB_LP_CAN1_RX0_IRQHandler)  /* 20 */ \
  X(CAN1_RX1_IRQHandler)  /* 21 */ \
  X(CAN1_SCE_IRQHandler)  /* 22 */ \
  X(EXTI9_5_IRQHandler)  /* 23 */ \
  X(TIM1_BRK_IRQHandler)  /* 24 */ \
  X(TIM1_UP_IRQHandler)  /* 25 */ \
  X(TIM1_TRG_COM_IRQHandler)  /* 26 */ \
  X(TIM1_CC_IRQHandler)  /* 27 */ \
  X(TIM2_IRQHandler)  /* 28 */ \
  X(TIM3_IRQHandler)  /* 29 */ \
  X(TIM4_IRQHandler)  /* 30 */ \
  X(I2C1_EV_IRQHandler)  /* 31 */ \
  X(I2C1_ER_IRQHandler)  /* 32 */ \
  X(I2C2_EV_IRQHandler)  /* 33 */ \
  X(I2C2_ER_IRQHandler)  /* 34 */ \
  X(SPI1_IRQHandler)  /* 35 */ \
  X(SPI2_IRQHandler)  /* 36 */ \
  X(USART1_IRQHandler)  /* 37 */ \
  X(USART2_IRQHandler)  /* 38 */ \
  X(USART3_IRQHandler)  /* 39 */ \
  X(EXTI15_10_IRQHandler)  /* 40 */ \
  X(RTCAlarm_IRQHandler)  /* 41 */ \
  X(USBWakeUp_IRQHandler)  /* 42 */
